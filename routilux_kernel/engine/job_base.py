"""What the parts of a running job share: its state, its lock, and how the parts call each other.

:class:`~routilux_kernel.engine.job_run.JobRun` combines ``PolicyDecisions``,
``DispatchAndCompletion``, ``ErrorsAndRetries`` and ``AsyncActivations``, each a subclass
of :class:`JobBase`.
The stubs below name the few calls that cross from one part to another, so each part's
module type-checks on its own.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

from routilux_kernel.core.job_state import ExecutionStatus, JobState
from routilux_kernel.engine.activation import Activation, RoutineRun
from routilux_kernel.engine.plan import FlowPlan
from routilux_kernel.engine.timers import TimerHandle

if TYPE_CHECKING:
    from routilux_kernel.core.flow import Flow
    from routilux_kernel.core.routine import Routine
    from routilux_kernel.engine.checkpoints import JobCheckpoints
    from routilux_kernel.engine.runtime import Runtime


class JobBase:
    """The scheduling state of one job; every field is guarded by ``lock``."""

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
        job_state._flow = weakref.ref(flow)  # a retained job must not keep its flow alive
        job_state._live_run = self  # routes emits that name the job (see Routine.emit)
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
        #: Set by the Runtime when the job runs on a durable store (see checkpoints.py).
        self._checkpoints: JobCheckpoints | None = None

    def _routine_started(self, activation: Activation) -> None:
        """The ``routine_started`` hook, wherever the activation runs (here or remote)."""
        hooks = self.hooks
        if hooks.routine_started is not None:
            hooks.notify(
                hooks.routine_started,
                job_state=self.job_state,
                routine_id=activation.routine_id,
                activation=activation,
            )

    def _run_of(self, routine_id: str) -> RoutineRun:
        run = self.runs.get(routine_id)
        if run is None:
            run = self.runs[routine_id] = RoutineRun(self, self.plan.specs[routine_id])
        return run

    def queue_depths(self) -> dict[str, dict[str, int]]:
        """What ``JobState.queue_depths`` reports: the non-empty slot queues, under the lock."""
        with self.lock:
            depths = {}
            for routine_id, run in self.runs.items():
                counts = {slot: n for slot, n in run.counts().items() if n}
                if counts:
                    depths[routine_id] = counts
            return depths

    # -- calls between the parts (implemented by exactly one part each) ---------------------

    def _decide(self, run: RoutineRun) -> Activation | None:
        raise NotImplementedError  # PolicyDecisions

    def _release_locked(self) -> list[Activation]:
        raise NotImplementedError  # PolicyDecisions

    def _dispatch(self, activation: Activation) -> None:
        raise NotImplementedError  # DispatchAndCompletion

    def _finish(self, activation: Activation, error: BaseException | None) -> None:
        raise NotImplementedError  # DispatchAndCompletion

    def _logic_returned(self, activation: Activation, error: BaseException | None) -> None:
        raise NotImplementedError  # DispatchAndCompletion

    def _call_logic(self, activation: Activation) -> Any:
        raise NotImplementedError  # DispatchAndCompletion

    def _dispatch_to_loop(self, activation: Activation) -> None:
        raise NotImplementedError  # AsyncActivations

    def _await_on_loop(self, activation: Activation, awaitable: Any) -> None:
        raise NotImplementedError  # AsyncActivations

    def _cancel_task_locked(self, activation: Activation) -> None:
        raise NotImplementedError  # AsyncActivations

    def _close_locked(
        self,
        status: ExecutionStatus,
        error: BaseException | None = None,
        routine_id: str | None = None,
    ) -> None:
        raise NotImplementedError  # DispatchAndCompletion

    def _finalize(self) -> None:
        raise NotImplementedError  # DispatchAndCompletion

    def _handle_error(self, activation: Activation, error: BaseException) -> str:
        raise NotImplementedError  # ErrorsAndRetries

    def route_emit(self, routine_id: str, event: str, data: dict[str, Any]) -> None:
        raise NotImplementedError  # PolicyDecisions

    def _request_wake(self, run: RoutineRun, delay: float) -> None:
        raise NotImplementedError  # PolicyDecisions

    def id_of(self, routine: Routine) -> str:
        raise NotImplementedError  # JobRun
