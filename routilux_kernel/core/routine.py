"""Routine: a definition of slots, events, config and logic, shared by every job of its flow."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from routilux_kernel.core.context import current_activation
from routilux_kernel.core.errors import NoJobContextError, UnknownEventError

if TYPE_CHECKING:
    from routilux_kernel.core.error_handling import ErrorHandler
    from routilux_kernel.core.job_state import JobState

#: Logic signature: ``logic(slot_data, policy_message, job_state)``.
Logic = Callable[[dict[str, list[dict[str, Any]]], Any, "JobState"], Any]

DEFAULT_MAX_QUEUE_LENGTH = 1000


@dataclass(frozen=True)
class Slot:
    """An input of a routine. Its queue lives in each job, never here.

    ``on_full`` is what an emit into a full slot does: ``"raise"`` (SlotFullError to the
    emitter) or ``"block"`` (wait up to ``block_timeout`` seconds for room, then raise).
    """

    name: str
    max_queue_length: int = DEFAULT_MAX_QUEUE_LENGTH
    on_full: Literal["raise", "block"] = "raise"
    block_timeout: float = 30.0


@dataclass(frozen=True)
class Event:
    """An output of a routine; ``params`` documents the keyword data it carries."""

    name: str
    params: tuple[str, ...] = field(default=())


class Routine:
    """Base class for routines. Subclass it, add slots and events, and give it logic.

    Logic is set with :meth:`set_logic` or by overriding :meth:`logic`; it is called as
    ``logic(slot_data, policy_message, job_state)`` where ``slot_data`` maps each slot name
    to the list of items (one dict per emit) this activation consumes. Either may be
    ``async def``: it then runs on the runtime's event loop instead of a worker thread.
    """

    def __init__(self) -> None:
        self._slots: dict[str, Slot] = {}
        self._events: dict[str, Event] = {}
        self._config: dict[str, Any] = {}
        self._logic: Logic | None = None
        self._activation_policy: Any = None
        self._error_handler: ErrorHandler | None = None
        self._executor: str | None = None
        # Bumped by changes a runtime snapshots (slots, events, executor), so a flow's
        # cached plan is rebuilt when one of its routines changes after it ran.
        self._structure_version = 0

    # -- structure -----------------------------------------------------------------------

    def add_slot(
        self,
        name: str,
        max_queue_length: int = DEFAULT_MAX_QUEUE_LENGTH,
        *,
        on_full: Literal["raise", "block"] = "raise",
        block_timeout: float = 30.0,
    ) -> Slot:
        """Define an input slot and return it."""
        _check_name("slot", name, self)
        if name in self._slots:
            raise ValueError(f"{type(self).__name__} already has a slot named {name!r}")
        if not isinstance(max_queue_length, int) or max_queue_length < 1:
            raise ValueError(
                f"slot {name!r} of {type(self).__name__}: max_queue_length must be an int >= 1, "
                f"got {max_queue_length!r}"
            )
        if on_full not in ("raise", "block"):
            raise ValueError(
                f"slot {name!r} of {type(self).__name__}: on_full must be 'raise' or 'block', "
                f"got {on_full!r}"
            )
        slot = Slot(name, max_queue_length, on_full, block_timeout)
        self._slots[name] = slot
        self._structure_version += 1
        return slot

    def add_event(self, name: str, params: Iterable[str] | None = None) -> Event:
        """Define an output event and return it."""
        _check_name("event", name, self)
        if name in self._events:
            raise ValueError(f"{type(self).__name__} already has an event named {name!r}")
        event = Event(name, tuple(params or ()))
        self._events[name] = event
        self._structure_version += 1
        return event

    @property
    def slots(self) -> dict[str, Slot]:
        return dict(self._slots)

    @property
    def events(self) -> dict[str, Event]:
        return dict(self._events)

    # -- config --------------------------------------------------------------------------

    def set_config(self, **config: Any) -> None:
        """Merge keyword values into the routine's config."""
        self._config.update(config)

    def get_config(self, key: str, default: Any = None) -> Any:
        return self._config.get(key, default)

    @property
    def config(self) -> dict[str, Any]:
        return dict(self._config)

    # -- behaviour -----------------------------------------------------------------------

    def set_logic(self, logic: Logic) -> None:
        """Use ``logic(slot_data, policy_message, job_state)`` as this routine's logic.

        ``async def`` logic runs on the runtime's event loop (see docs/concepts.md).
        """
        if not callable(logic):
            raise TypeError(f"set_logic takes a callable, got {type(logic).__name__}")
        self._logic = logic
        self._structure_version += 1  # sync or async decides where it runs: plans rebuild

    def logic(
        self, slot_data: dict[str, list[dict[str, Any]]], policy_message: Any, job_state: JobState
    ) -> Any:
        """Override in a subclass, or call :meth:`set_logic`."""
        raise NotImplementedError(
            f"{type(self).__name__} has no logic: override logic() or call set_logic()"
        )

    def get_logic(self) -> Logic:
        """The callable the kernel runs for an activation."""
        return self._logic if self._logic is not None else self.logic

    @property
    def has_logic(self) -> bool:
        return self._logic is not None or type(self).logic is not Routine.logic

    def set_activation_policy(self, policy: Any) -> None:
        """Set the policy that decides when this routine runs (default: immediate)."""
        if not callable(policy):
            raise TypeError(
                f"set_activation_policy takes a policy from routilux_kernel.core.policies "
                f"or a callable, got {type(policy).__name__}"
            )
        self._activation_policy = policy

    def get_activation_policy(self) -> Any:
        """The policy in force; None means immediate."""
        return self._activation_policy

    def set_error_handler(self, handler: ErrorHandler | None) -> None:
        """Handle this routine's errors with ``handler`` (before the flow's and runtime's)."""
        self._error_handler = handler

    def get_error_handler(self) -> ErrorHandler | None:
        """The routine-level handler; override to compute one."""
        return self._error_handler

    def set_executor(self, name: str | None) -> None:
        """Run this routine's activations on the named executor (e.g. ``"process"``)."""
        self._executor = name
        self._structure_version += 1

    @property
    def executor(self) -> str | None:
        return self._executor

    # -- running -------------------------------------------------------------------------

    def emit(self, event: str, **data: Any) -> None:
        """Send ``data`` out of ``event`` to every connected slot, within the current job."""
        if event not in self._events:
            known = ", ".join(sorted(self._events)) or "none"
            raise UnknownEventError(
                f"{type(self).__name__}.emit({event!r}): no such event; its events are: {known}"
            )
        ctx = current_activation.get()
        if ctx is None:
            raise NoJobContextError(
                f"{type(self).__name__}.emit({event!r}) was called outside a running job; "
                "emit only from routine logic started by Runtime.exec"
            )
        ctx.emit(self, event, data)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} slots={list(self._slots)} events={list(self._events)}>"


def _check_name(kind: str, name: object, routine: Routine) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(
            f"{type(routine).__name__}: a {kind} name must be a non-empty string, got {name!r}"
        )
