"""Flow: routines by id and the connections from their events to other routines' slots."""

from __future__ import annotations

import os
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from routilux_kernel.core.errors import FlowValidationError
from routilux_kernel.core.routine import Routine

if TYPE_CHECKING:
    from routilux_kernel.core.error_handling import ErrorHandler

#: Name of the slot an entry routine receives ``entry_params`` in.
TRIGGER_SLOT = "trigger"


@dataclass(frozen=True)
class Connection:
    """``source_id.event -> target_id.slot``."""

    source_id: str
    event: str
    target_id: str
    slot: str

    def __str__(self) -> str:
        return f"{self.source_id}.{self.event} -> {self.target_id}.{self.slot}"


class Flow:
    """A graph of routines. Build it once; run it many times, concurrently, with a Runtime."""

    def __init__(self, flow_id: str | None = None) -> None:
        if flow_id is not None and (not isinstance(flow_id, str) or not flow_id):
            raise FlowValidationError(f"flow_id must be a non-empty string, got {flow_id!r}")
        self.flow_id: str = flow_id or f"flow-{os.urandom(6).hex()}"
        self.routines: dict[str, Routine] = {}
        self.connections: list[Connection] = []
        self.error_handler: ErrorHandler | None = None
        #: Executor name for this flow (below ``Runtime(executor=...)`` in precedence).
        self.executor: str | None = None
        self.executor_options: dict[str, Any] = {}
        #: Entry routine ids used when ``exec`` is given none (None: the unfed-trigger rule).
        self.entry: list[str] | None = None
        #: Default entry data; ``exec``'s ``entry_params`` are merged over it.
        self.params: dict[str, Any] = {}
        #: The flow file this flow was read from (kept with its jobs, for recovery).
        self.source_file: str | None = None
        # (source_id, event) -> ((target_id, slot), ...): the routing table emit reads.
        self._routes: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {}
        self._fed_slots: set[tuple[str, str]] = set()
        #: Bumped on every structural change so runtimes can cache what they derive.
        self.version = 0
        # What each runtime derived from this flow; kept here (not on the runtime) so a
        # flow that is no longer used is freed along with it.
        self._runtime_plans: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    # -- building ------------------------------------------------------------------------

    def add_routine(self, routine: Routine, routine_id: str | None = None) -> str:
        """Add ``routine`` under ``routine_id`` (generated if omitted) and return the id."""
        if not isinstance(routine, Routine):
            raise FlowValidationError(
                f"flow {self.flow_id!r}: add_routine takes a Routine, got {type(routine).__name__}"
            )
        if routine_id is None:
            base = type(routine).__name__.lower()
            n = 1
            while f"{base}_{n}" in self.routines:
                n += 1
            routine_id = f"{base}_{n}"
        if not isinstance(routine_id, str) or not routine_id.strip():
            raise FlowValidationError(
                f"flow {self.flow_id!r}: a routine id must be a non-empty string, "
                f"got {routine_id!r}"
            )
        if routine_id in self.routines:
            existing = type(self.routines[routine_id]).__name__
            raise FlowValidationError(
                f"flow {self.flow_id!r}: routine id {routine_id!r} is already used by a "
                f"{existing}; ids in this flow: {', '.join(self.routines)}"
            )
        for other_id, other in self.routines.items():
            if other is routine:
                raise FlowValidationError(
                    f"flow {self.flow_id!r}: this {type(routine).__name__} instance is already "
                    f"added as {other_id!r}; create a new instance for {routine_id!r}"
                )
        self.routines[routine_id] = routine
        self.version += 1
        return routine_id

    def connect(self, source_id: str, event: str, target_id: str, slot: str) -> Connection:
        """Route ``source_id``'s ``event`` into ``target_id``'s ``slot``."""
        source = self._routine_or_error(source_id, "source")
        target = self._routine_or_error(target_id, "target")
        if event not in source._events:
            raise FlowValidationError(
                f"flow {self.flow_id!r}: routine {source_id!r} ({type(source).__name__}) has no "
                f"event {event!r}; its events: {_names(source._events)}"
            )
        if slot not in target._slots:
            raise FlowValidationError(
                f"flow {self.flow_id!r}: routine {target_id!r} ({type(target).__name__}) has no "
                f"slot {slot!r}; its slots: {_names(target._slots)}"
            )
        connection = Connection(source_id, event, target_id, slot)
        if connection in self.connections:
            raise FlowValidationError(f"flow {self.flow_id!r}: {connection} is already connected")
        self.connections.append(connection)
        key = (source_id, event)
        self._routes[key] = self._routes.get(key, ()) + ((target_id, slot),)
        self._fed_slots.add((target_id, slot))
        self.version += 1
        return connection

    def set_error_handler(self, handler: ErrorHandler | None) -> None:
        """Handle errors of routines that have no handler of their own."""
        self.error_handler = handler

    def set_executor(self, name: str | None, **options: Any) -> None:
        """Run this flow's activations on the named executor unless the runtime says otherwise."""
        self.executor = name
        self.executor_options = dict(options)
        self.version += 1

    # -- reading -------------------------------------------------------------------------

    def targets(self, source_id: str, event: str) -> tuple[tuple[str, str], ...]:
        """``(target_id, slot)`` pairs fed by ``source_id``'s ``event``."""
        return self._routes.get((source_id, event), ())

    def entry_routine_ids(self) -> list[str]:
        """Routines with a ``trigger`` slot that no connection feeds, in insertion order."""
        return [
            rid
            for rid, routine in self.routines.items()
            if TRIGGER_SLOT in routine._slots and (rid, TRIGGER_SLOT) not in self._fed_slots
        ]

    def validation_errors(self) -> list[str]:
        """Every problem that would stop this flow from running, as sentences."""
        problems = []
        if not self.routines:
            problems.append(f"flow {self.flow_id!r} has no routines")
        elif self.entry is not None:
            for rid in self.entry:
                routine = self.routines.get(rid)
                if routine is None:
                    problems.append(
                        f"flow {self.flow_id!r}: entry routine {rid!r} does not exist; "
                        f"routines: {_names(self.routines)}"
                    )
                elif TRIGGER_SLOT not in routine._slots and len(routine._slots) != 1:
                    problems.append(
                        f"flow {self.flow_id!r}: entry routine {rid!r} needs a "
                        f"{TRIGGER_SLOT!r} slot or exactly one slot; its slots: "
                        f"{_names(routine._slots)}"
                    )
        elif not self.entry_routine_ids():
            problems.append(
                f"flow {self.flow_id!r} has no entry routine: no routine has a "
                f"{TRIGGER_SLOT!r} slot that no connection feeds; add one or pass "
                "entry_routine_id to exec"
            )
        for rid, routine in self.routines.items():
            if not routine.has_logic:
                problems.append(
                    f"flow {self.flow_id!r}: routine {rid!r} ({type(routine).__name__}) has no "
                    "logic: call set_logic() or override logic()"
                )
        return problems

    def validate(self) -> list[str]:
        """Every problem, as sentences (empty when the flow can run), as routilux returned.

        :meth:`check` raises instead.
        """
        return self.validation_errors()

    def check(self) -> None:
        """Raise FlowValidationError listing every problem, or return None."""
        problems = self.validation_errors()
        if problems:
            raise FlowValidationError("; ".join(problems))

    # -- export --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The flow as plain data in the flow-file format (see docs/flow-files.md)."""
        return _dict_format().to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], **options: Any) -> Flow:
        """Build a flow from plain data in the flow-file format."""
        return _dict_format().from_dict(data, **options)

    def to_mermaid(self) -> str:
        """A Mermaid ``graph LR`` of routines (with their class) and connections."""
        lines = ["graph LR"]
        for rid, routine in self.routines.items():
            lines.append(f'    {_node(rid)}["{rid}<br/>{type(routine).__name__}"]')
        for c in self.connections:
            lines.append(f"    {_node(c.source_id)} -->|{c.event} → {c.slot}| {_node(c.target_id)}")
        return "\n".join(lines) + "\n"

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_runtime_plans"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._runtime_plans = weakref.WeakKeyDictionary()

    def _routine_or_error(self, routine_id: str, role: str) -> Routine:
        try:
            return self.routines[routine_id]
        except (KeyError, TypeError):
            raise FlowValidationError(
                f"flow {self.flow_id!r}: unknown {role} routine {routine_id!r}; "
                f"routines in this flow: {_names(self.routines)}"
            ) from None

    def __repr__(self) -> str:
        return (
            f"<Flow {self.flow_id!r} routines={len(self.routines)} "
            f"connections={len(self.connections)}>"
        )


class FlowDictFormat(Protocol):
    """Turns flows into plain data and back (the flow-file layer provides it)."""

    def to_dict(self, flow: Flow) -> dict[str, Any]: ...

    def from_dict(self, data: dict[str, Any], **options: Any) -> Flow: ...


_dict_format_in_use: FlowDictFormat | None = None


def set_flow_dict_format(dict_format: FlowDictFormat) -> None:
    """Install what ``Flow.to_dict``/``from_dict`` use (done by the composition root)."""
    global _dict_format_in_use
    _dict_format_in_use = dict_format


def _dict_format() -> FlowDictFormat:
    if _dict_format_in_use is None:
        raise RuntimeError("no flow dict format installed: import routilux_kernel first")
    return _dict_format_in_use


def _names(mapping: dict[str, Any]) -> str:
    return ", ".join(repr(name) for name in mapping) or "none"


def _node(routine_id: str) -> str:
    return "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in routine_id) or "_"
