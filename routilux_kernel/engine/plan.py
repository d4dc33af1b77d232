"""What a runtime derives once per flow version: routing table, slots, executors, entries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from inspect import iscoroutinefunction

from routilux_kernel.core.errors import FlowValidationError
from routilux_kernel.core.flow import Flow
from routilux_kernel.core.routine import Routine, Slot
from routilux_kernel.executors.contract import Executor


@dataclass(eq=False)
class RoutineSpec:
    routine_id: str
    routine: Routine
    slots: dict[str, Slot]
    slot_names: tuple[str, ...]
    #: ``(routine_id, slot)`` of each slot, in slot order: a durable job's queue keys.
    slot_keys: tuple[tuple[str, str], ...]
    executor: Executor
    in_process: bool
    #: How many activations of it may run at once in one job.
    concurrency: int
    #: The routine's structure version this spec was made from.
    structure_version: int
    #: ``async def`` logic on an in-process executor: it runs on the runtime's event loop.
    on_loop: bool = False
    #: For remote executors: the routine pickled once (``engine/remote_runs.py``), and the
    #: config version it was pickled at.
    pickled_routine: bytes | None = None
    pickled_config_version: int = -1


@dataclass(eq=False)
class FlowPlan:
    flow: Flow
    version: int
    specs: dict[str, RoutineSpec]
    routes: dict[tuple[str, str], tuple[tuple[str, str], ...]]
    entry_ids: list[str]
    id_by_routine: dict[int, str]
    #: The flow definition as a job store keeps it (``checkpoints.flow_snapshot``): made on
    #: the first durable job, as a 1-tuple (its text is None for a flow no file can name).
    stored_snapshot: tuple[str | None] | None = None

    def is_current(self, flow: Flow) -> bool:
        """False once the flow, or one of its routines' slots, events or executor, changed."""
        if self.version != flow.version:
            return False
        for spec in self.specs.values():
            if spec.routine._structure_version != spec.structure_version:
                return False
        return True


def build_plan(flow: Flow, executor_for: Callable[[str, Routine], Executor]) -> FlowPlan:
    """Snapshot ``flow`` so running jobs never see later edits to it.

    Routines bound to an executor that pickles are checked here, once per flow version,
    so a routine that cannot be sent to a worker fails ``exec`` before any work starts.
    """
    specs = {}
    problems: list[str] = []
    for routine_id, routine in flow.routines.items():
        executor = executor_for(routine_id, routine)
        if executor.capabilities.pickles:
            problems.extend(_pickling_problems(routine, routine_id, executor))
        specs[routine_id] = RoutineSpec(
            routine_id=routine_id,
            routine=routine,
            slots=dict(routine._slots),
            slot_names=tuple(routine._slots),
            slot_keys=tuple((routine_id, slot) for slot in routine._slots),
            executor=executor,
            in_process=executor.capabilities.in_process,
            concurrency=routine.concurrency,
            structure_version=routine._structure_version,
            on_loop=executor.capabilities.in_process and iscoroutinefunction(routine.get_logic()),
        )
    if problems:
        raise FlowValidationError(
            f"flow {flow.flow_id!r} cannot run on its executors: " + "; ".join(problems)
        )
    return FlowPlan(
        flow=flow,
        version=flow.version,
        specs=specs,
        routes=dict(flow._routes),
        entry_ids=flow.entry_routine_ids(),
        id_by_routine={id(routine): rid for rid, routine in flow.routines.items()},
    )


def _pickling_problems(routine: Routine, routine_id: str, executor: Executor) -> list[str]:
    from routilux_kernel.executors.pickling import pickling_problems

    return [
        f"{problem} (executor {executor.name!r} pickles routines)"
        for problem in pickling_problems(routine, routine_id)
    ]
