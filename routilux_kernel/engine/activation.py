"""The per-job units the scheduler works with: a routine's run in one job, and one activation."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import count
from typing import TYPE_CHECKING, Any

from routilux_kernel.core.context import NO_CONTEXT
from routilux_kernel.core.policies import SlotQueues
from routilux_kernel.engine.plan import RoutineSpec
from routilux_kernel.engine.timers import TimerHandle

if TYPE_CHECKING:
    from routilux_kernel.core.job_state import JobState
    from routilux_kernel.core.routine import Routine
    from routilux_kernel.engine.checkpoints import ActivationRecorder
    from routilux_kernel.engine.job_base import JobBase


class RoutineRun(SlotQueues):
    """A routine's state in one job: its slot queues (the policy's view), how many of its
    activations run, and the activation context its logic's ``emit`` calls go through."""

    __slots__ = ("job", "job_state", "spec", "routine_id", "routine", "active", "skipped", "wake")

    def __init__(self, job: JobBase, spec: RoutineSpec) -> None:
        SlotQueues.__init__(self, spec.slot_names, spec.concurrency)
        self.job = job
        self.job_state = job.job_state
        self.spec = spec
        self.routine_id = spec.routine_id
        self.routine = spec.routine
        #: Activations of this routine in this job that are in flight (at most concurrency).
        self.active = 0
        self.skipped = False
        self.wake: TimerHandle | None = None

    def emit(self, routine: Routine, event: str, data: dict[str, Any]) -> None:
        """Route an emit of the running logic (the in-process ActivationContext)."""
        routine_id = self.routine_id if routine is self.routine else self.job.id_of(routine)
        self.job.route_emit(routine_id, event, data)

    def _on_wake_request(self, seconds: float) -> None:
        self.job._request_wake(self, seconds)


#: Activation ids: next() on a count is atomic under the GIL, so no lock is needed.
_activation_ids = count(1)


class Activation:
    """One run of a routine's logic on one slice of data; what ``run_activation`` hooks see."""

    __slots__ = (
        "activation_id",
        "job",
        "run",
        "slot_data",
        "policy_message",
        "attempt",
        "future",
        "running",
        "submitting",
        "started_at",
        "task",
        "checkpoint",
    )

    def __init__(self, job: JobBase, run: RoutineRun, slot_data: dict[str, Any], message: Any):
        self.activation_id = next(_activation_ids)
        self.job = job
        self.run = run
        self.slot_data = slot_data
        self.policy_message = message
        self.attempt = 0
        self.future: Any = None
        #: False while queued on the executor or waiting for a retry: if the job ends then,
        #: its data goes back to ``JobState.unconsumed`` instead of being lost.
        self.running = False
        #: True while a remote executor's ``submit`` runs; ``submit_remote`` then settles it.
        self.submitting = False
        #: When this attempt started running (remote: was handed over); None while it has
        #: not, so an activation that never ran leaves no execution record.
        self.started_at: float | None = None
        #: The asyncio task running async logic, while it runs (cancelled if the job ends).
        self.task: Any = None
        #: What this activation consumed, routed and wrote, when the job's store is durable.
        self.checkpoint: ActivationRecorder | None = None

    @property
    def routine_id(self) -> str:
        return self.run.spec.routine_id

    @property
    def routine(self) -> Routine:
        return self.run.spec.routine

    @property
    def job_state(self) -> JobState:
        return self.job.job_state

    @property
    def context(self) -> Mapping[str, Any]:
        """Empty: ``remote_activation_context`` is shipped only to remote workers."""
        return NO_CONTEXT

    def call_logic(self) -> Any:
        """Run the routine's logic on this activation's data."""
        return self.run.spec.routine.get_logic()(
            self.slot_data, self.policy_message, self.job.job_state
        )

    def __repr__(self) -> str:
        return f"<Activation {self.routine_id} job={self.job.job_state.job_id} try={self.attempt}>"
