"""Registers STOP, CONTINUE, SKIP and RETRY, and answers ``decide_error`` last."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from routilux_kernel.error_handling import (
    ActivationFailure,
    ContinueStrategy,
    ErrorDecision,
    RetryStrategy,
    SkipStrategy,
    StopStrategy,
)
from routilux_kernel.hookspecs import hookimpl


@hookimpl
def register_error_strategies(register: Callable[..., None]) -> None:
    register("stop", StopStrategy())
    register("continue", ContinueStrategy())
    register("skip", SkipStrategy())
    register("retry", RetryStrategy())


@hookimpl(trylast=True)
def decide_error(failure: ActivationFailure) -> Any:
    decision: ErrorDecision = failure.strategy.decide(failure)
    return decision
