"""One running job: its slot queues, in-flight count and the scheduling decisions on them.

The data path, in this file's order: ``start`` puts ``entry_params`` in the entry slots;
``_decide`` asks the routine's activation policy; ``_dispatch`` hands an :class:`Activation`
to the routine's executor; ``_run_local`` runs logic in a worker; ``route_emit`` puts emitted
data in connected slots (and decides again); ``_finish`` ends an activation, applies the error
strategy, and completes the job when nothing is in flight.

All of a job's scheduling state is guarded by its own lock, so jobs never contend with each
other. Hooks, logic and executor calls always run outside that lock.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from loguru import logger

try:  # loguru's own context variable: binding through it skips contextualize()'s global lock
    from loguru._logger import context as _log_context
except ImportError:  # pragma: no cover - a loguru without it falls back to contextualize()
    _log_context = None

from routilux_kernel.core.context import current_activation
from routilux_kernel.core.error_handling import (
    DEFAULT_ERROR_HANDLER,
    ActivationFailure,
    ErrorAction,
    ErrorDecision,
    ErrorHandler,
    UnknownStrategy,
)
from routilux_kernel.core.errors import (
    ActivationPolicyError,
    ExecutorError,
    JobCancelledError,
    JobTimeoutError,
    RoutiluxError,
    SlotFullError,
    exception_text,
)
from routilux_kernel.core.job_state import ExecutionStatus, JobState
from routilux_kernel.core.policies import DEFAULT_POLICY
from routilux_kernel.engine.activation import Activation, RoutineRun
from routilux_kernel.engine.plan import FlowPlan
from routilux_kernel.engine.remote_runs import submit_remote
from routilux_kernel.engine.timers import TimerHandle

if TYPE_CHECKING:
    from routilux_kernel.core.flow import Flow
    from routilux_kernel.core.routine import Routine
    from routilux_kernel.engine.runtime import Runtime


class JobRun:
    """Schedules one job. Created by ``Runtime.exec``; users see only its JobState."""

    def __init__(
        self,
        runtime: Runtime,
        flow: Flow,
        plan: FlowPlan,
        job_state: JobState,
        timeout: float | None,
    ) -> None:
        self.runtime = runtime
        self.flow = flow
        self.plan = plan
        self.job_state = job_state
        self.hooks = runtime._hooks
        self.lock = threading.Lock()
        self._room: threading.Condition | None = None  # made when an emitter must wait for room
        self._blocked = 0
        self.runs: dict[str, RoutineRun] = {}
        self.in_flight = 0
        self.closed = False
        self._needs_finalize = False
        self._finalize_claim = threading.Lock()  # acquired once, by whoever finalizes
        self._active: set[Activation] = set()
        self._to_cancel: list[Activation] = []  # remote work to withdraw once closed
        self._claim_held = False  # finalized while logic of it still ran (see _finalize)
        self._policy_thread: int | None = None  # the thread running a policy, under the lock
        self._timers: set[TimerHandle] = set()
        self._timeout = timeout
        self._timeout_handle: TimerHandle | None = None

    # -- start ---------------------------------------------------------------------------

    def start(self, entries: list[tuple[str, str]], params: dict[str, Any]) -> None:
        """Deliver ``params`` to each ``(routine_id, slot)`` entry (plus resumed data) and go."""
        state = self.job_state
        with self.lock:
            if self.closed:  # cancelled (or shut down) before it started: keep the entry data
                for routine_id, slot in entries:
                    state.unconsumed.setdefault(routine_id, {}).setdefault(slot, []).append(
                        dict(params)
                    )
                return
            state.status = ExecutionStatus.RUNNING
            state.started_at = time.time()
            # Data is in the job's slots before any hook runs, so a close drains it.
            resumed, state.unconsumed = state.unconsumed, {}
            for routine_id, slots in resumed.items():
                run = self._run_of(routine_id)
                for slot, items in slots.items():
                    for item in items:
                        run._append(slot, item)
            for routine_id, slot in entries:
                self._run_of(routine_id)._append(slot, dict(params))
        if self.hooks.job_started is not None:
            self.hooks.notify(self.hooks.job_started, job_state=state, flow=self.flow)
        ready: list[Activation] = []
        with self.lock:
            if self.closed:  # a hook or another thread ended it; the closer finalizes
                return
            if self._timeout is not None:
                timers = self.runtime._timers
                self._timeout_handle = timers.schedule(self._timeout, self._on_timeout)
            for run in self.runs.values():
                activation = self._decide(run)
                if activation is not None:
                    ready.append(activation)
            if not self.in_flight:  # nothing wanted to run: complete (or fail) right away
                self.in_flight = 1
                ready.extend(self._release_locked())
        for activation in ready:
            self._dispatch(activation)
        if self._needs_finalize:
            self._finalize()

    def _run_of(self, routine_id: str) -> RoutineRun:
        run = self.runs.get(routine_id)
        if run is None:
            run = self.runs[routine_id] = RoutineRun(self, self.plan.specs[routine_id])
        return run

    def id_of(self, routine: Routine) -> str:
        try:
            return self.plan.id_by_routine[id(routine)]
        except KeyError:
            raise RoutiluxError(
                f"{type(routine).__name__}.emit was called inside job {self.job_state.job_id} "
                f"but that routine is not part of flow {self.flow.flow_id!r}"
            ) from None

    # -- deciding ------------------------------------------------------------------------

    def _decide(self, run: RoutineRun) -> Activation | None:
        """Ask the routine's policy whether to run now (caller holds the lock)."""
        if run.busy or run.skipped or self.closed:
            return None
        policy = run.spec.routine._activation_policy or DEFAULT_POLICY
        try:
            activate, data, message = self._ask(policy, run)
        except Exception as exc:
            self._policy_failed(run, policy, exc)
            return None
        if not activate:
            return None
        return self._activation_locked(run, data, message, policy)

    def _ask(self, policy: Any, run: RoutineRun) -> Any:
        self._policy_thread = threading.get_ident()
        try:
            return policy(run, self.job_state)
        finally:
            self._policy_thread = None

    def _activation_locked(
        self, run: RoutineRun, data: Any, message: Any, policy: Any
    ) -> Activation | None:
        if not isinstance(data, dict):
            self._policy_failed(
                run, policy, TypeError(f"data_slice must be a dict, got {type(data).__name__}")
            )
            return None
        run.busy = True
        self.in_flight += 1
        activation = Activation(self, run, data, message)
        self._active.add(activation)
        if self._blocked and self._room is not None:
            self._room.notify_all()
        return activation

    def _policy_failed(self, run: RoutineRun, policy: Any, exc: Exception) -> None:
        error = ActivationPolicyError(
            f"activation policy {policy!r} of routine {run.spec.routine_id!r} in job "
            f"{self.job_state.job_id} failed: {type(exc).__name__}: {exc}; a policy returns "
            "(activate, data_slice, policy_message)"
        )
        error.__cause__ = exc
        self._close_locked(ExecutionStatus.FAILED, error, run.spec.routine_id)

    # -- running -------------------------------------------------------------------------

    def _dispatch(self, activation: Activation) -> None:
        spec = activation.run.spec
        try:
            if spec.in_process:
                spec.executor.dispatch(self._run_local, activation)
            else:
                # submit_remote sets activation.future under the lock; assigning its return
                # here could overwrite what a done-callback that already ran (a retry) set.
                submit_remote(self, activation)
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
        state = self.job_state
        run = activation.run
        routine_id = run.spec.routine_id
        hooks = self.hooks
        error: BaseException | None = None
        token = current_activation.set(run)
        # Bind job_id/routine_id for every loguru record made inside the logic (ours and the
        # user's). contextualize() takes loguru's process-wide lock twice per call, which all
        # workers contend on; setting the same context variable directly is equivalent.
        log_token = (
            _log_context.set(
                {**_log_context.get(), "job_id": state.job_id, "routine_id": routine_id}
            )
            if _log_context is not None
            else None
        )
        try:
            if log_token is None:
                with logger.contextualize(job_id=state.job_id, routine_id=routine_id):
                    self._call_logic(activation)
            else:
                self._call_logic(activation)
        except BaseException as exc:  # noqa: BLE001 - every failure goes to the error strategy
            error = exc
        finally:
            if log_token is not None:
                _log_context.reset(log_token)
            current_activation.reset(token)
        if hooks.routine_finished is not None:
            hooks.notify(
                hooks.routine_finished, job_state=state, routine_id=routine_id, error=error
            )
        self._finish(activation, error)

    def _call_logic(self, activation: Activation) -> None:
        run = activation.run
        hooks = self.hooks
        if hooks.routine_started is not None:
            hooks.notify(hooks.routine_started, job_state=self.job_state, routine_id=run.routine_id)
        if hooks.run_activation is not None:
            hooks.run_activation(activation=activation)
        else:
            run.routine.get_logic()(activation.slot_data, activation.policy_message, self.job_state)

    # -- routing -------------------------------------------------------------------------

    def route_emit(self, routine_id: str, event: str, data: dict[str, Any]) -> None:
        """Put ``data`` in every slot connected to ``routine_id``'s ``event``."""
        state = self.job_state
        if self.hooks.event_emitted is not None:
            self.hooks.notify(
                self.hooks.event_emitted,
                job_state=state,
                routine_id=routine_id,
                event=event,
                data=data,
            )
        targets = self.plan.routes.get((routine_id, event))
        if not targets:
            return
        ready = []
        with self.lock:
            if self.closed:  # logic that outlived its job: keep the data, route nothing
                state.record(routine_id, "emit_after_end", event)
                for target_id, slot in targets:
                    state.unconsumed.setdefault(target_id, {}).setdefault(slot, []).append(data)
                return
            for target_id, slot in targets:
                run = self._run_of(target_id)
                if run._length(slot) >= run.spec.slots[slot].max_queue_length:
                    self._wait_for_room(routine_id, event, targets)
                    if self.closed:  # ended while this emit waited for room: keep the data
                        state.record(routine_id, "emit_after_end", event)
                        for target_id, slot in targets:
                            state.unconsumed.setdefault(target_id, {}).setdefault(slot, []).append(
                                data
                            )
                        return
                    break
            for target_id, slot in targets:
                run = self.runs[target_id]
                # self.closed: the policy of an earlier target failed and ended the job
                if run.skipped or self.closed:
                    state.unconsumed.setdefault(target_id, {}).setdefault(slot, []).append(data)
                    continue
                run._append(slot, data)
                if not run.busy:
                    activation = self._decide(run)
                    if activation is not None:
                        ready.append(activation)
        for activation in ready:
            self._dispatch(activation)
        if self._needs_finalize:
            self._finalize()

    def _wait_for_room(
        self, source_id: str, event: str, targets: tuple[tuple[str, str], ...]
    ) -> None:
        """Refuse (or block) the whole emit if any target slot is full: all or nothing.

        After any wait every target is checked again, since the lock was released meanwhile.
        """
        full = self._first_full_target(targets)
        while full is not None and not self.closed:
            run, target_id, slot = full
            spec_slot = run.spec.slots[slot]
            if spec_slot.on_full == "block":
                if self._room is None:
                    self._room = threading.Condition(self.lock)
                deadline = time.monotonic() + spec_slot.block_timeout
                self._blocked += 1
                try:
                    while run._length(slot) >= spec_slot.max_queue_length and not self.closed:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0 or not self._room.wait(remaining):
                            break
                finally:
                    self._blocked -= 1
                if self.closed or run._length(slot) < spec_slot.max_queue_length:
                    full = self._first_full_target(targets)
                    continue
            raise SlotFullError(
                f"slot {slot!r} of routine {target_id!r} is full ({spec_slot.max_queue_length} "
                f"items) in job {self.job_state.job_id} of flow {self.flow.flow_id!r}; "
                f"the emit of {source_id!r}.{event} was refused and nothing was delivered. "
                "Raise max_queue_length or use on_full='block'"
            )

    def _first_full_target(
        self, targets: tuple[tuple[str, str], ...]
    ) -> tuple[RoutineRun, str, str] | None:
        for target_id, slot in targets:
            run = self._run_of(target_id)
            if not run.skipped and run._length(slot) >= run.spec.slots[slot].max_queue_length:
                return run, target_id, slot
        return None

    # -- finishing -----------------------------------------------------------------------

    def _finish(self, activation: Activation, error: BaseException | None) -> None:
        """End an activation: error strategy, next decision for the routine, job completion."""
        if error is not None and self.closed:  # the job has its outcome; keep a trace of it
            self.job_state.record(activation.run.routine_id, "error_after_end", repr(error))
        elif error is not None:
            try:
                if self._handle_error(activation, error):
                    return  # a retry is scheduled; the activation stays in flight
            except Exception as exc:  # e.g. a get_error_handler() override that raises
                failure = RoutiluxError(
                    f"handling the error of routine {activation.routine_id!r} in job "
                    f"{self.job_state.job_id} failed: {type(exc).__name__}: {exc}"
                )
                failure.__cause__ = exc
                with self.lock:
                    self._close_locked(ExecutionStatus.FAILED, failure, activation.routine_id)
        run = activation.run
        next_activation = None
        release_claim = False
        with self.lock:
            run.busy = False
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

    def _release_locked(self) -> list[Activation]:
        """Drop one in-flight unit; at zero, give idle policies a last say, else complete."""
        self.in_flight -= 1
        if self.in_flight or self.closed:
            return []
        ready = []
        for run in self.runs.values():
            if run.busy or run.skipped or not run.any_ready():
                continue
            policy = run.spec.routine._activation_policy or DEFAULT_POLICY
            on_idle = getattr(policy, "on_idle", None)
            if on_idle is None:
                continue
            try:
                activate, data, message = self._ask(on_idle, run)
            except Exception as exc:
                self._policy_failed(run, policy, exc)
                return []
            if activate:
                activation = self._activation_locked(run, data, message, policy)
                if activation is not None:
                    ready.append(activation)
        if not ready and not self.in_flight and not self.closed:  # on_idle may ask for a wake-up
            self._close_locked(ExecutionStatus.COMPLETED)
        return ready

    def _handle_error(self, activation: Activation, error: BaseException) -> bool:
        """Apply the error strategy; True when a retry was scheduled."""
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
                    return False
                activation.running = False
                activation.future = None  # waiting, not handed over: a close keeps its data
                handle = self.runtime._timers.schedule(
                    decision.delay, lambda timer: self._retry(activation, timer)
                )
                self._timers.add(handle)
            return True
        with self.lock:
            state.record(routine_id, "error", entry)
            if decision.action is ErrorAction.STOP:
                if decision.reason:
                    entry["reason"] = decision.reason
                state.errors.append(entry)
                self._close_locked(ExecutionStatus.FAILED, error, routine_id)
            elif decision.action is ErrorAction.SKIP:
                state.errors.append(entry)
                activation.run.skipped = True
                state.skipped_routines.add(routine_id)
                left = activation.run._drain()
                if left:
                    state.unconsumed.setdefault(routine_id, {}).update(left)
                    if self._blocked and self._room is not None:
                        self._room.notify_all()  # emitters waiting on its full slots
            else:
                state.errors.append(entry)
        return False

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

    # -- timers --------------------------------------------------------------------------

    def _request_wake(self, run: RoutineRun, delay: float) -> None:
        """A policy asked to be called again in ``delay`` seconds (caller holds the lock)."""
        if self.closed:
            return
        if run.wake is not None:
            if run.wake.deadline <= time.monotonic() + delay:
                return
            run.wake.cancel()
            self._timers.discard(run.wake)
        else:
            self.in_flight += 1  # a pending wake-up keeps the job open
        handle = self.runtime._timers.schedule(delay, lambda timer: self._on_wake(run, timer))
        run.wake = handle
        self._timers.add(handle)

    def _on_wake(self, run: RoutineRun, handle: TimerHandle) -> None:
        with self.lock:
            if run.wake is not handle:
                return
            run.wake = None
            self._timers.discard(handle)
            activation = self._decide(run)
            ready = self._release_locked()
        if activation is not None:
            self._dispatch(activation)
        for other in ready:
            self._dispatch(other)
        if self._needs_finalize:
            self._finalize()

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

    # -- ending --------------------------------------------------------------------------

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
        with self.lock:  # a resume must wait until no logic of this run is left running
            self._claim_held = self._logic_running_locked()
        state._mark_done(release_claim=not self._claim_held)
        self.runtime._job_finished(self)
