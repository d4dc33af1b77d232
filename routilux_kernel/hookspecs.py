"""Every hook a routilux plugin can implement. One function per hook."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

PROJECT_NAME = "routilux"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_executors(register: Callable[..., None]) -> None:
    """Register executor factories: ``register(name, factory)``; ``factory(**options)`` -> Executor."""


@hookspec
def register_routines(register: Callable[..., None]) -> None:
    """Register routine classes by name: ``register(name, routine_class)``."""


@hookspec
def register_activation_policies(register: Callable[..., None]) -> None:
    """Register activation policy factories: ``register(name, factory)``; ``factory(**options)``."""


@hookspec
def register_error_strategies(register: Callable[..., None]) -> None:
    """Register error strategies: ``register(name, strategy)``; ``strategy.decide(failure)``."""


@hookspec
def register_commands(register: Callable[..., None]) -> None:
    """Register CLI sub-commands: ``register(name, run, help=..., add_arguments=None)``."""


@hookspec
def job_started(job_state: Any, flow: Any) -> None:
    """Called when a job starts, before its entry routines are activated."""


@hookspec
def job_finished(job_state: Any, flow: Any) -> None:
    """Called once when a job reaches completed, failed or cancelled."""


@hookspec
def routine_started(job_state: Any, routine_id: str) -> None:
    """Called in the worker before a routine's logic runs for one activation."""


@hookspec
def routine_finished(job_state: Any, routine_id: str, error: BaseException | None) -> None:
    """Called in the worker after a routine's logic returned or raised (``error``)."""


@hookspec
def event_emitted(job_state: Any, routine_id: str, event: str, data: dict[str, Any]) -> None:
    """Called for every emit, before the data is routed to connected slots."""


@hookspec(firstresult=True)
def decide_error(failure: Any) -> Any:
    """Turn a failed activation into an ErrorDecision; the first non-None answer wins."""


@hookspec(firstresult=True)
def run_activation(activation: Any) -> Any:
    """Run one activation's logic; implement with ``wrapper=True`` to wrap every activation."""


@hookspec
def worker_setup(worker: Any) -> None:
    """Called once in each remote worker process before it runs any activation."""
