"""Error handlers and the strategies that turn a routine's exception into a decision."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from routilux_kernel.core.markers import hookimpl

if TYPE_CHECKING:
    from routilux_kernel.core.job_state import JobState


#: Longest wait a retry (or a timer-based policy) may ask for: one day. Longer waits are
#: mistakes (a delay in milliseconds, a runaway backoff) that leave a job waiting for ever.
MAX_WAIT_SECONDS = 86_400
#: Upper bounds of the retry numbers, as flow files and ``ErrorHandler(...)`` check them.
MAX_RETRIES = 1000
MAX_RETRY_BACKOFF = 1000


def longest_retry_wait(retries: int, delay: float, backoff: float) -> float:
    """``delay * backoff ** (retries - 1)``, the last retry's wait, without overflowing."""
    if retries < 1 or delay == 0 or backoff <= 1:
        return float(delay)
    exponent = math.log(delay) + (retries - 1) * math.log(backoff)
    return math.inf if exponent > 700 else math.exp(exponent)


def _shown(value: Any) -> str:
    """A short repr for an error message (a huge int's repr may even raise)."""
    if isinstance(value, int) and abs(value) > 10**40:
        return f"an int of about {int(math.log10(abs(value))) + 1} digits"
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _check_bounded_number(
    name: str, value: Any, expected: str, upper: float, *, whole: bool = False
) -> None:
    """Raise TypeError/ValueError unless ``value`` is a finite number from 0 to ``upper``."""
    if isinstance(value, int) and not isinstance(value, bool):
        within = 0 <= value <= upper  # ints compare exactly, however large
    elif isinstance(value, float) and not whole:
        within = math.isfinite(value) and 0 <= value <= upper
    else:
        raise TypeError(
            f"ErrorHandler: {name} expected {expected} from 0 to {upper}, "
            f"got {type(value).__name__} {_shown(value)}"
        )
    if not within:
        raise ValueError(
            f"ErrorHandler: {name} expected {expected} from 0 to {upper}, got {_shown(value)}"
        )


class ErrorStrategy(StrEnum):
    """The built-in strategies; plugins may register more by name."""

    STOP = "stop"
    CONTINUE = "continue"
    SKIP = "skip"
    RETRY = "retry"


class ErrorAction(StrEnum):
    """What the kernel does with a failed activation."""

    STOP = "stop"  # the job fails; nothing new is scheduled
    CONTINUE = "continue"  # the error is recorded; the job goes on
    SKIP = "skip"  # the routine is taken out of this job; the job goes on
    RETRY = "retry"  # the same activation runs again after ``delay`` seconds


@dataclass(frozen=True)
class ErrorDecision:
    action: ErrorAction
    delay: float = 0.0
    reason: str = ""


@dataclass
class ErrorHandler:
    """How a routine's (or flow's) errors are handled.

    ``strategy`` is an :class:`ErrorStrategy` or the name of a strategy a plugin registered.
    RETRY waits ``retry_delay * retry_backoff ** n`` before the n-th retry, retries only
    ``retryable_exceptions``, and stops the job once ``max_retries`` are spent.
    ``is_critical`` (the original routilux's flag) makes a failure that is not retried
    fail the job whatever the strategy says.
    """

    strategy: ErrorStrategy | str = ErrorStrategy.STOP
    max_retries: int = 3
    retry_delay: float = 1.0
    retry_backoff: float = 2.0
    retryable_exceptions: tuple[type[BaseException], ...] = (Exception,)
    options: dict[str, Any] = field(default_factory=dict)
    is_critical: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.strategy, str) and not isinstance(self.strategy, ErrorStrategy):
            try:
                self.strategy = ErrorStrategy(self.strategy.lower())
            except ValueError:
                pass  # a plugin's strategy name; checked against the registry at exec
        self._check_retry_numbers()
        if isinstance(self.retryable_exceptions, type):
            self.retryable_exceptions = (self.retryable_exceptions,)
        else:
            self.retryable_exceptions = tuple(self.retryable_exceptions)

    def _check_retry_numbers(self) -> None:
        # The same bounds as a flow file's: an infinite or overflowing wait leaves the job
        # waiting for ever, and NaN would retry at once.
        _check_bounded_number("max_retries", self.max_retries, "an int", MAX_RETRIES, whole=True)
        _check_bounded_number(
            "retry_delay", self.retry_delay, "a number of seconds", MAX_WAIT_SECONDS
        )
        _check_bounded_number("retry_backoff", self.retry_backoff, "a number", MAX_RETRY_BACKOFF)
        longest = longest_retry_wait(self.max_retries, self.retry_delay, self.retry_backoff)
        if longest > MAX_WAIT_SECONDS:
            raise ValueError(
                "ErrorHandler: the last retry would wait retry_delay * retry_backoff ** "
                f"(max_retries - 1) = {self.retry_delay} * {self.retry_backoff} ** "
                f"{self.max_retries - 1}, more than {MAX_WAIT_SECONDS} seconds (one day); "
                "lower one of them"
            )

    @property
    def strategy_name(self) -> str:
        return str(self.strategy)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"strategy": self.strategy_name}
        defaults = ErrorHandler()
        for key in ("max_retries", "retry_delay", "retry_backoff"):
            value = getattr(self, key)
            # RETRY always spells its numbers out; other strategies only when they differ
            if self.strategy == ErrorStrategy.RETRY or value != getattr(defaults, key):
                data[key] = value
        if self.is_critical:
            data["is_critical"] = True
        data.update(self.options)
        return data


@dataclass
class ActivationFailure:
    """What an error strategy (or a ``decide_error`` hook) is told about a failed activation."""

    error: BaseException
    routine_id: str
    job_state: JobState
    handler: ErrorHandler
    strategy: Any
    #: How many times this activation has already been retried.
    attempt: int


class StopStrategy:
    def decide(self, failure: ActivationFailure) -> ErrorDecision:
        return ErrorDecision(ErrorAction.STOP)


class ContinueStrategy:
    def decide(self, failure: ActivationFailure) -> ErrorDecision:
        return ErrorDecision(ErrorAction.CONTINUE)


class SkipStrategy:
    def decide(self, failure: ActivationFailure) -> ErrorDecision:
        return ErrorDecision(ErrorAction.SKIP)


class RetryStrategy:
    def decide(self, failure: ActivationFailure) -> ErrorDecision:
        handler = failure.handler
        if not _is_retryable(failure.error, handler.retryable_exceptions):
            return ErrorDecision(ErrorAction.STOP, reason="not a retryable exception")
        if failure.attempt >= handler.max_retries:
            return ErrorDecision(
                ErrorAction.STOP, reason=f"gave up after {handler.max_retries} retries"
            )
        delay = handler.retry_delay * handler.retry_backoff**failure.attempt
        return ErrorDecision(ErrorAction.RETRY, delay=delay)


class UnknownStrategy:
    """Stands in for a strategy name nobody registered: STOP, saying so."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def decide(self, failure: ActivationFailure) -> ErrorDecision:
        return ErrorDecision(ErrorAction.STOP, reason=self.reason)


def _is_retryable(error: BaseException, kinds: tuple[type[BaseException], ...]) -> bool:
    """``isinstance``, also for errors that came back from a worker as a RoutineError."""
    if isinstance(error, kinds):
        return True
    remote_classes = getattr(error, "error_mro", ())  # qualified names of the remote class
    return any(f"{kind.__module__}.{kind.__qualname__}" in remote_classes for kind in kinds)


#: The runtime's last resort when neither routine nor flow has a handler.
DEFAULT_ERROR_HANDLER = ErrorHandler(ErrorStrategy.STOP)


@hookimpl
def register_error_strategies(register: Callable[..., None]) -> None:
    """The built-in strategies STOP, CONTINUE, SKIP and RETRY."""
    register("stop", StopStrategy())
    register("continue", ContinueStrategy())
    register("skip", SkipStrategy())
    register("retry", RetryStrategy())


@hookimpl(trylast=True)
def decide_error(failure: ActivationFailure) -> ErrorDecision:
    """Answer last: the strategy the handler names decides."""
    decision: ErrorDecision = failure.strategy.decide(failure)
    if failure.handler.is_critical and decision.action in (ErrorAction.CONTINUE, ErrorAction.SKIP):
        return ErrorDecision(ErrorAction.STOP, reason="the routine is critical (is_critical=True)")
    return decision
