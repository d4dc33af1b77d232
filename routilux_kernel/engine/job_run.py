"""One running job: its slot queues, in-flight count and the scheduling decisions on them.

JobRun is made of three parts, one concept each, in data-path order:
``start`` (here) puts ``entry_params`` in the entry slots; ``decisions.py`` asks the
routine's activation policy (``_decide``) and routes emits into connected slots
(``route_emit``); ``completion.py`` hands an :class:`Activation` to its executor
(``_dispatch``), runs in-process logic (``_run_local``), ends activations (``_finish``) and
the job, exactly once (``_close_locked``, ``_finalize``); ``retries.py`` applies the error
strategy to a failed activation and runs RETRY on a timer; ``async_runs.py`` runs
``async def`` logic as a task on the runtime's event loop.

All of a job's scheduling state is guarded by its own lock, so jobs never contend with each
other. Hooks, logic and executor calls always run outside that lock.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from routilux_kernel.core.errors import RoutiluxError
from routilux_kernel.core.job_state import ExecutionStatus
from routilux_kernel.engine.activation import Activation
from routilux_kernel.engine.async_runs import AsyncActivations
from routilux_kernel.engine.completion import DispatchAndCompletion
from routilux_kernel.engine.decisions import PolicyDecisions
from routilux_kernel.engine.retries import ErrorsAndRetries

if TYPE_CHECKING:
    from routilux_kernel.core.routine import Routine


class JobRun(PolicyDecisions, DispatchAndCompletion, ErrorsAndRetries, AsyncActivations):
    """Schedules one job. Created by ``Runtime.exec``; users see only its JobState."""

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
            for routine_id in state.skipped_routines:  # a recovered job keeps its skips
                if routine_id in self.plan.specs:
                    self._run_of(routine_id).skipped = True
            checkpoints = self._checkpoints
            for routine_id, slots in resumed.items():
                run = self._run_of(routine_id)
                for slot, items in slots.items():
                    for item in items:
                        run._append(slot, item)
                        if checkpoints is not None:
                            checkpoints.delivered((routine_id, slot))
            for entry in entries:
                routine_id, slot = entry
                self._run_of(routine_id)._append(slot, dict(params))
                if checkpoints is not None:
                    checkpoints.delivered(entry)
        if self.hooks.job_started is not None:
            self.hooks.notify(
                self.hooks.job_started, job_state=state, flow=self.flow, entry_params=params
            )
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

    def emit(self, routine: Routine, event: str, data: dict[str, Any]) -> None:
        """Route an emit that named this job from a thread running none of its activations."""
        self.route_emit(self.id_of(routine), event, data)

    def id_of(self, routine: Routine) -> str:
        try:
            return self.plan.id_by_routine[id(routine)]
        except KeyError:
            raise RoutiluxError(
                f"{type(routine).__name__}.emit was called inside job {self.job_state.job_id} "
                f"but that routine is not part of flow {self.flow.flow_id!r}"
            ) from None
