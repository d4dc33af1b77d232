"""Errors and retries: a failed activation meets its error strategy; RETRY runs it again later.

A part of :class:`~routilux_kernel.engine.job_run.JobRun`, which combines the parts; every
method runs on a JobRun and follows its locking rules (see ``job_run.py``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from routilux_kernel.core.error_handling import (
    DEFAULT_ERROR_HANDLER,
    ActivationFailure,
    ErrorAction,
    ErrorDecision,
    ErrorHandler,
    UnknownStrategy,
)
from routilux_kernel.core.errors import exception_text
from routilux_kernel.core.execution_record import FAILED, RETRIED, SKIPPED
from routilux_kernel.core.job_state import ExecutionStatus
from routilux_kernel.core.lazy_logger import logger
from routilux_kernel.engine.activation import Activation
from routilux_kernel.engine.job_base import JobBase
from routilux_kernel.engine.timers import TimerHandle

if TYPE_CHECKING:
    from routilux_kernel.core.routine import Routine


class ErrorsAndRetries(JobBase):
    """Errors and retries of one job."""

    def _handle_error(self, activation: Activation, error: BaseException) -> str:
        """Apply the error strategy; return the activation's outcome (``retried`` when a
        retry was scheduled)."""
        state = self.job_state
        routine_id = activation.run.spec.routine_id
        handler = self._handler_for(activation.run.spec.routine)
        decision = self._decide_error(activation, error, handler)
        entry = {
            "routine_id": routine_id,
            "error_type": type(error).__name__,
            "error": exception_text(error),
            "action": str(decision.action),
            "attempt": activation.attempt,
            "time": time.time(),
        }
        logger.bind(job_id=state.job_id, routine_id=routine_id).debug(
            "job {} routine {} raised {!r}: {}", state.job_id, routine_id, error, decision.action
        )
        if decision.action is ErrorAction.RETRY:
            activation.attempt += 1
            with self.lock:
                state.record(routine_id, "error", entry)
                if self.closed:
                    return FAILED
                activation.running = False
                activation.future = None  # waiting, not handed over: a close keeps its data
                handle = self.runtime._timers.schedule(
                    decision.delay, lambda timer: self._retry(activation, timer)
                )
                self._timers.add(handle)
            return RETRIED
        outcome = FAILED
        with self.lock:
            state.record(routine_id, "error", entry)
            if decision.action is ErrorAction.STOP:
                if decision.reason:
                    entry["reason"] = decision.reason
                state.errors.append(entry)
                self._close_locked(ExecutionStatus.FAILED, error, routine_id)
            elif decision.action is ErrorAction.SKIP:
                state.errors.append(entry)
                outcome = SKIPPED
                activation.run.skipped = True
                state.skipped_routines.add(routine_id)
                if activation.checkpoint is not None:  # committed with this failure
                    activation.checkpoint.record("skip", routine_id)
                left = activation.run._drain()
                if left:
                    state.unconsumed.setdefault(routine_id, {}).update(left)
                    if self._blocked and self._room is not None:
                        self._room.notify_all()  # emitters waiting on its full slots
            else:
                state.errors.append(entry)
        return outcome

    def _handler_for(self, routine: Routine) -> ErrorHandler:
        return (
            routine.get_error_handler()
            or self.flow.error_handler
            or self.runtime.default_error_handler
            or DEFAULT_ERROR_HANDLER
        )

    def _decide_error(
        self, activation: Activation, error: BaseException, handler: ErrorHandler
    ) -> ErrorDecision:
        routine_id = activation.run.spec.routine_id
        try:
            strategy = self.runtime.registries.error_strategies.get(handler.strategy_name)
        except LookupError as exc:  # a decide_error hook may still know what to do
            strategy = UnknownStrategy(f"routine {routine_id!r}: {exc}")
        failure = ActivationFailure(
            error, routine_id, self.job_state, handler, strategy, activation.attempt
        )
        try:
            decision = self.hooks.decide_error(failure=failure)
        except Exception as exc:
            logger.opt(exception=True).error("decide_error hook raised")
            return ErrorDecision(ErrorAction.STOP, reason=f"decide_error hook raised {exc!r}")
        if not isinstance(decision, ErrorDecision):
            return ErrorDecision(
                ErrorAction.STOP, reason=f"error strategy returned {decision!r}, not ErrorDecision"
            )
        return decision

    def _retry(self, activation: Activation, handle: TimerHandle) -> None:
        with self.lock:
            self._timers.discard(handle)
            closed = self.closed
        if closed:
            self._finish(activation, None)
            return
        self.job_state.record(activation.run.spec.routine_id, "retry", activation.attempt)
        self._dispatch(activation)
