"""Dispatch and completion: activations go to executors, finish, and the job ends exactly once.

A part of :class:`~routilux_kernel.engine.job_run.JobRun`, which combines the parts; every
method runs on a JobRun and follows its locking rules (see ``job_run.py``).
"""

from __future__ import annotations

import threading
import time
from inspect import isawaitable
from typing import TYPE_CHECKING, Any, cast

from routilux_kernel.core.context import current_activation
from routilux_kernel.core.effect_recording import current_recorder
from routilux_kernel.core.errors import (
    ExecutorError,
    JobCancelledError,
    JobTimeoutError,
    RoutiluxError,
)
from routilux_kernel.core.execution_record import COMPLETED, FAILED, RETRIED, ExecutionRecord
from routilux_kernel.core.job_state import ExecutionStatus
from routilux_kernel.core.lazy_logger import logger, loguru_context
from routilux_kernel.engine.activation import Activation
from routilux_kernel.engine.job_base import JobBase
from routilux_kernel.engine.timers import TimerHandle

if TYPE_CHECKING:
    from routilux_kernel.engine.checkpoints import ActivationRecorder
    from routilux_kernel.engine.job_run import JobRun


class DispatchAndCompletion(JobBase):
    """Dispatch and completion of one job."""

    def _dispatch(self, activation: Activation) -> None:
        spec = activation.run.spec
        try:
            if spec.on_loop:
                self._dispatch_to_loop(activation)
            elif spec.in_process:
                spec.executor.dispatch(self._run_local, activation)
            else:
                # Imported here: the remote protocol (pickling) loads only when it is used.
                from routilux_kernel.engine.remote_runs import submit_remote

                # submit_remote sets activation.future under the lock; assigning its return
                # here could overwrite what a done-callback that already ran (a retry) set.
                submit_remote(cast("JobRun", self), activation)
        except Exception as exc:
            error = ExecutorError(
                f"executor {spec.executor.name!r} refused routine {spec.routine_id!r} of job "
                f"{self.job_state.job_id}: {type(exc).__name__}: {exc}"
            )
            error.__cause__ = exc
            self._finish(activation, error)

    def _run_local(self, activation: Activation) -> None:
        """Worker side of an in-process activation."""
        with self.lock:  # decided together with _close_locked: run it, or its data is kept
            if not self.closed:
                activation.running = True
        if not activation.running:  # the job ended while this waited in the queue
            self._finish(activation, None)
            return
        activation.started_at = time.time()
        state = self.job_state
        run = activation.run
        routine_id = run.spec.routine_id
        error: BaseException | None = None
        result = None
        token = current_activation.set(run)
        checkpoint = activation.checkpoint
        if checkpoint is not None:  # the job state's writes report to it (effect_recording)
            checkpoint.ran = True
            recorder_token = current_recorder.set(checkpoint)
        # Bind job_id/routine_id for every loguru record made inside the logic (ours and the
        # user's). contextualize() takes loguru's process-wide lock twice per call, which all
        # workers contend on; setting the same context variable directly is equivalent.
        log_context = loguru_context()
        log_token = (
            log_context.set({**log_context.get(), "job_id": state.job_id, "routine_id": routine_id})
            if log_context is not None
            else None
        )
        try:
            result = self._call_logic(activation)
        except BaseException as exc:  # noqa: BLE001 - every failure goes to the error strategy
            error = exc
        finally:
            if log_token is not None:
                log_context.reset(log_token)  # type: ignore[union-attr]
            current_activation.reset(token)
            if checkpoint is not None:
                current_recorder.reset(recorder_token)
        if result is not None and error is None and isawaitable(result):
            self._await_on_loop(activation, result)  # it finishes the activation there
            return
        self._logic_returned(activation, error)

    def _logic_returned(self, activation: Activation, error: BaseException | None) -> None:
        """The activation's logic is over, wherever it ran: tell the hooks, then finish it."""
        hooks = self.hooks
        if hooks.routine_finished is not None:
            hooks.notify(
                hooks.routine_finished,
                job_state=self.job_state,
                routine_id=activation.run.routine_id,
                error=error,
                activation=activation,
            )
        self._finish(activation, error)

    def _call_logic(self, activation: Activation) -> Any:
        run = activation.run
        hooks = self.hooks
        if hooks.routine_started is not None:  # the hot path pays no call without observers
            self._routine_started(activation)
        if hooks.run_activation is not None:
            return hooks.run_activation(activation=activation)
        return run.routine.get_logic()(
            activation.slot_data, activation.policy_message, self.job_state
        )

    def _finish(self, activation: Activation, error: BaseException | None) -> None:
        """End an activation: error strategy, next decision for the routine, job completion."""
        outcome = COMPLETED
        if error is not None and self.closed:  # the job has its outcome; keep a trace of it
            outcome = FAILED
            self.job_state.record(activation.run.routine_id, "error_after_end", repr(error))
        elif error is not None:
            outcome = FAILED
            try:
                outcome = self._handle_error(activation, error)
                if outcome == RETRIED:
                    self._record_execution(activation, RETRIED)
                    return  # a retry is scheduled; the activation stays in flight
            except Exception as exc:  # e.g. a get_error_handler() override that raises
                failure = RoutiluxError(
                    f"handling the error of routine {activation.routine_id!r} in job "
                    f"{self.job_state.job_id} failed: {type(exc).__name__}: {exc}"
                )
                failure.__cause__ = exc
                with self.lock:
                    self._close_locked(ExecutionStatus.FAILED, failure, activation.routine_id)
        record = self._record_execution(activation, outcome)
        checkpoint = activation.checkpoint
        if checkpoint is not None and (checkpoint.ran or error is not None):
            self._commit_checkpoint(activation, checkpoint, error, record)
        run = activation.run
        next_activation = None
        release_claim = False
        with self.lock:
            run.active -= 1
            self._active.discard(activation)
            if not self.closed and run.any_ready():
                next_activation = self._decide(run)
            ready = self._release_locked()
            if self._claim_held and not self._logic_running_locked():
                self._claim_held, release_claim = False, True
        if release_claim:
            self.job_state._release_claim()
        if next_activation is not None:
            self._dispatch(next_activation)
        for other in ready:
            self._dispatch(other)
        if self._needs_finalize:
            self._finalize()

    def _record_execution(self, activation: Activation, outcome: str) -> ExecutionRecord | None:
        """One execution-history entry for an attempt that ran (never for one that did not);
        a durable store's activation row is made from the same record."""
        started_at = activation.started_at
        activation.started_at = None  # a retry that never runs must not record this attempt
        if started_at is None:
            return None
        attempt = activation.attempt if outcome != RETRIED else activation.attempt - 1
        return self.job_state.record_execution(
            activation.run.routine_id, outcome, None, started_at, time.time(), attempt
        )

    def _commit_checkpoint(
        self,
        activation: Activation,
        checkpoint: ActivationRecorder,
        error: BaseException | None,
        record: ExecutionRecord | None,
    ) -> None:
        assert self._checkpoints is not None
        failure = self._checkpoints.activation_finished(
            checkpoint, record, activation.attempt, error
        )
        if failure is not None:  # nothing more of this job can be kept: stop it here
            with self.lock:
                self._close_locked(ExecutionStatus.FAILED, failure, activation.routine_id)

    def _on_timeout(self, handle: TimerHandle) -> None:
        with self.lock:
            self._close_locked(
                ExecutionStatus.FAILED,
                JobTimeoutError(
                    f"job {self.job_state.job_id} of flow {self.flow.flow_id!r} timed out "
                    f"after {self._timeout}s"
                ),
            )
        if self._needs_finalize:
            self._finalize()

    def abort(self, error: BaseException) -> None:
        """``start`` itself failed: end the job as failed so nobody waits on it."""
        with self.lock:
            self._close_locked(ExecutionStatus.FAILED, error)
        self._finalize()

    def cancel(self, reason: str = "cancelled by cancel_job") -> bool:
        if self._policy_thread == threading.get_ident():  # this thread holds the lock
            raise RoutiluxError(
                f"job {self.job_state.job_id} was cancelled from inside an activation policy, "
                "which runs under the job's lock; a policy cannot end its job (raise instead "
                "to fail it, or cancel from routine logic)"
            )
        with self.lock:
            if self.closed:
                return False
            self._close_locked(ExecutionStatus.CANCELLED, JobCancelledError(reason))
        self._finalize()
        return True

    def _close_locked(
        self,
        status: ExecutionStatus,
        error: BaseException | None = None,
        routine_id: str | None = None,
    ) -> None:
        """Make the job terminal: nothing new is scheduled; queued data is recorded."""
        if self.closed:
            return
        self.closed = True
        state = self.job_state
        state.status = status
        state.error = error
        state.error_routine_id = routine_id
        state.finished_at = time.time()
        if status is not ExecutionStatus.COMPLETED:
            state._cancel_requested = True
        for run_id, run in self.runs.items():
            left = run._drain()
            if left:
                state.unconsumed.setdefault(run_id, {}).update(left)
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        if self._timeout_handle is not None:
            self._timeout_handle.cancel()
        for activation in self._active:
            if activation.running or activation.submitting:
                if activation.task is not None:  # async logic: cancelled at its next await
                    self._cancel_task_locked(activation)
                continue  # its logic (or its hand-over, see submit_remote) settles it
            if activation.future is not None:  # handed to a remote executor
                # Cancelled in _finalize: Future.cancel() runs done-callbacks at once, and
                # those take this lock.
                self._to_cancel.append(activation)
                continue
            # Queued, not yet handed over, or waiting for a retry: it will not run.
            self._keep_locked(activation)
        if self._blocked and self._room is not None:
            self._room.notify_all()
        self._needs_finalize = True

    def _logic_running_locked(self) -> bool:
        for activation in self._active:
            if activation.running or activation.submitting:
                return True
            # Handed to a remote executor and not finished: its future may be done while
            # its done-callback still replays the outcome into this job's state.
            if activation.future is not None:
                return True
        return False

    def _keep_locked(self, activation: Activation) -> None:
        """Record the data of an activation that will not run, ahead of what its routine
        still had queued (a policy takes from the front of the queues)."""
        left = self.job_state.unconsumed.setdefault(activation.run.routine_id, {})
        for slot, items in activation.slot_data.items():
            if items:
                left[slot] = [*items, *left.get(slot, ())]

    def _withdraw(self, activation: Activation) -> bool:
        """Cancel remote work (never under the lock); an executor that fails is reported."""
        executor = activation.run.spec.executor
        try:
            return bool(executor.cancel(activation.future))
        except Exception:
            logger.opt(exception=True).error(
                "executor {!r} failed to cancel routine {} of job {}",
                executor.name,
                activation.routine_id,
                self.job_state.job_id,
            )
            return False

    def _finalize(self) -> None:
        """Tell hooks, waiters and the runtime, exactly once, outside the lock."""
        if not self._finalize_claim.acquire(blocking=False):
            return
        for activation in self._to_cancel:
            if self._withdraw(activation):
                with self.lock:
                    self._keep_locked(activation)
        self._to_cancel = []
        state = self.job_state
        if self.hooks.job_finished is not None:
            self.hooks.notify(self.hooks.job_finished, job_state=state, flow=self.flow)
        if self._checkpoints is not None:
            self._checkpoints.job_finished()
        with self.lock:  # a resume must wait until no logic of this run is left running
            self._claim_held = self._logic_running_locked()
            # Every use of the routine runs is guarded by ``closed``, so a finished job
            # drops them: a RoutineRun points back to its JobRun, and that cycle made every
            # job garbage that only the collector could free (its cost grew with the jobs).
            self.runs = {}
        state._live_run = None  # an emit naming this job from a helper thread now fails
        state._mark_done(release_claim=not self._claim_held)
        self.runtime._job_finished(cast("JobRun", self))
