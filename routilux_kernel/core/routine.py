"""Routine: a definition of slots, events, config and logic, shared by every job of its flow."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

from routilux_kernel.core.context import ActivationContext, current_activation
from routilux_kernel.core.description import describe
from routilux_kernel.core.errors import (
    EventDataError,
    NoJobContextError,
    RoutiluxError,
    UnknownEventError,
)

if TYPE_CHECKING:
    from routilux_kernel.core.error_handling import ErrorHandler, ErrorStrategy
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
    """An output of a routine. When it declares keys, every emit carries each of ``params``,
    may carry any of ``optional``, and nothing else."""

    name: str
    params: tuple[str, ...] = field(default=())
    optional: tuple[str, ...] = field(default=())


class ConfigSnapshot(dict[str, Any]):
    """A copy of a routine's config; calling it (``routine.config()``, as in the original
    routilux) returns a plain copy too."""

    def __call__(self) -> dict[str, Any]:
        return dict(self)


class Routine:
    """Base class for routines. Subclass it, add slots and events, and give it logic.

    Logic is set with :meth:`set_logic` or by overriding :meth:`logic`; it is called as
    ``logic(slot_data, policy_message, job_state)`` where ``slot_data`` maps each slot name
    to the list of items (one dict per emit) this activation consumes. Either may be
    ``async def``: it then runs on the runtime's event loop instead of a worker thread.
    """

    #: The routine's config keys: key -> {"type", "default", "required", "enum", "description"}
    #: (see ``core/description.py``). Empty: the routine declares no schema, nothing is checked.
    config_schema: ClassVar[dict[str, dict[str, Any]]] = {}
    #: False for routines that keep per-job state across activations: they refuse
    #: ``set_concurrency(n > 1)``.
    allows_concurrency: ClassVar[bool] = True

    def __init__(self) -> None:
        self._concurrency = 1
        self._config_version = 0
        self._slots: dict[str, Slot] = {}
        self._events: dict[str, Event] = {}
        # Declared params of the events that have them, checked at every emit.
        # event -> (keys every emit carries, keys an emit may carry)
        self._event_params: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
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

    def add_event(
        self, name: str, params: Iterable[str] | None = None, *, optional: Iterable[str] = ()
    ) -> Event:
        """Define an output event and return it.

        ``params`` are the keys every emit of it carries; ``optional`` keys may be left out.
        An event that declares any key refuses emits with a missing or an undeclared key.
        """
        _check_name("event", name, self)
        if name in self._events:
            raise ValueError(f"{type(self).__name__} already has an event named {name!r}")
        if isinstance(params, str):
            raise TypeError(
                f"event {name!r} of {type(self).__name__}: params is a list of key names, "
                f"got the string {params!r}"
            )
        if isinstance(optional, str):
            raise TypeError(
                f"event {name!r} of {type(self).__name__}: optional is a list of key names, "
                f"got the string {optional!r}"
            )
        event = Event(name, tuple(params or ()), tuple(optional))
        self._events[name] = event
        if event.params or event.optional:
            required = frozenset(event.params)
            self._event_params[name] = (required, required | frozenset(event.optional))
        self._structure_version += 1
        return event

    @property
    def slots(self) -> dict[str, Slot]:
        return dict(self._slots)

    @property
    def events(self) -> dict[str, Event]:
        return dict(self._events)

    def get_slot(self, name: str) -> Slot | None:
        """The slot called ``name``, or None."""
        return self._slots.get(name)

    def get_event(self, name: str) -> Event | None:
        """The event called ``name``, or None."""
        return self._events.get(name)

    # -- config --------------------------------------------------------------------------

    def set_config(self, **config: Any) -> None:
        """Merge keyword values into the routine's config."""
        self._config.update(config)
        self._config_version += 1  # a copy sent to remote workers is pickled again

    def get_config(self, key: str, default: Any = None) -> Any:
        """The config value of ``key``; else ``default``; else the schema's default, if any."""
        if key in self._config:
            return self._config[key]
        if default is None:
            spec = type(self).config_schema.get(key)
            if spec is not None:
                return spec.get("default")
        return default

    @property
    def config(self) -> ConfigSnapshot:
        """A copy of the config; ``routine.config()`` works as well."""
        return ConfigSnapshot(self._config)

    # -- behaviour -----------------------------------------------------------------------

    def set_logic(self, logic: Logic) -> Self:
        """Use ``logic(slot_data, policy_message, job_state)`` as this routine's logic.

        ``async def`` logic runs on the runtime's event loop (see docs/concepts.md).
        """
        if not callable(logic):
            raise TypeError(f"set_logic takes a callable, got {type(logic).__name__}")
        self._logic = logic
        self._structure_version += 1  # sync or async decides where it runs: plans rebuild
        return self

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

    def set_activation_policy(self, policy: Any) -> Self:
        """Set the policy that decides when this routine runs (default: immediate)."""
        if not callable(policy):
            raise TypeError(
                f"set_activation_policy takes a policy from routilux_kernel.core.policies "
                f"or a callable, got {type(policy).__name__}"
            )
        self._activation_policy = policy
        return self

    def get_activation_policy(self) -> Any:
        """The policy in force; None means immediate."""
        return self._activation_policy

    def set_error_handler(self, handler: ErrorHandler | None) -> Self:
        """Handle this routine's errors with ``handler`` (before the flow's and runtime's)."""
        self._error_handler = handler
        return self

    def set_as_optional(self, strategy: ErrorStrategy | str | None = None) -> Self:
        """Let this routine fail without failing the job (CONTINUE, or ``strategy``)."""
        from routilux_kernel.core.error_handling import ErrorHandler, ErrorStrategy

        return self.set_error_handler(
            ErrorHandler(strategy=strategy or ErrorStrategy.CONTINUE, is_critical=False)
        )

    def set_as_critical(
        self, max_retries: int = 3, retry_delay: float = 1.0, retry_backoff: float = 2.0
    ) -> Self:
        """Retry this routine on failure; the job fails once the retries are spent."""
        from routilux_kernel.core.error_handling import ErrorHandler, ErrorStrategy

        return self.set_error_handler(
            ErrorHandler(
                strategy=ErrorStrategy.RETRY,
                max_retries=max_retries,
                retry_delay=retry_delay,
                retry_backoff=retry_backoff,
                is_critical=True,
            )
        )

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

    def emit(
        self,
        event: str,
        runtime: Any = None,
        job_state: JobState | None = None,
        **data: Any,
    ) -> None:
        """Send ``data`` out of ``event`` to every connected slot, within the current job.

        ``job_state`` names the job explicitly (needed from a thread the logic started);
        ``runtime`` is checked against the job's runtime. Neither is sent as data.
        """
        if event not in self._events:
            known = ", ".join(sorted(self._events)) or "none"
            raise UnknownEventError(
                f"{type(self).__name__}.emit({event!r}): no such event; its events are: {known}"
            )
        declared = self._event_params.get(event)
        if declared is not None:
            required, allowed = declared
            if not (allowed.issuperset(data) and required.issubset(data)):
                self._refuse_emit(event, data, required, allowed)
        ctx = current_activation.get()
        if job_state is not None and (ctx is None or ctx.job_state is not job_state):
            ctx = self._context_of(job_state, event)
        elif ctx is None:
            raise NoJobContextError(
                f"{type(self).__name__}.emit({event!r}) was called outside a running job; "
                "emit only from routine logic started by Runtime.exec, or pass job_state="
            )
        if runtime is not None:
            owner = getattr(getattr(ctx, "job", ctx), "runtime", None)
            if owner is not None and owner is not runtime:
                raise RoutiluxError(
                    f"{type(self).__name__}.emit({event!r}, runtime=...): job "
                    f"{ctx.job_state.job_id} runs in another Runtime than the one given"
                )
        ctx.emit(self, event, data)

    # -- concurrency and self-description ------------------------------------------------

    def set_concurrency(self, n: int) -> Routine:
        """Let up to ``n`` activations of this routine run at once within one job.

        Each activation takes its own items; the logic must not depend on the order of its
        own activations. The default, 1, runs them one at a time.
        """
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"{type(self).__name__}: concurrency must be an int >= 1, got {n!r}")
        if n > 1 and not type(self).allows_concurrency:
            raise ValueError(
                f"{type(self).__name__} keeps per-job state across its activations and cannot "
                f"run {n} at once (allows_concurrency is False); use concurrency 1"
            )
        self._concurrency = n
        self._structure_version += 1
        return self

    @property
    def concurrency(self) -> int:
        """How many activations of this routine may run at once within one job."""
        return self._concurrency

    def describe(self) -> dict[str, Any]:
        """Slots, events with params, config schema and values, concurrency, as plain data."""
        return describe(self)

    def _refuse_emit(
        self, event: str, data: dict[str, Any], required: frozenset[str], allowed: frozenset[str]
    ) -> None:
        unknown = sorted(set(data) - allowed)
        missing = sorted(required - set(data))
        problems = []
        if missing:
            problems.append(f"missing: {missing}")
        if unknown:
            problems.append(f"unknown: {unknown}")
        optional = sorted(allowed - required)
        raise EventDataError(
            f"{type(self).__name__}.emit({event!r}) sent keys {sorted(data)}, but the event "
            f"declares params {sorted(required)}"
            + (f" and optional {optional}" if optional else "")
            + f"; {', '.join(problems)}. Send the declared keys, or declare the event with "
            "the keys it carries"
        )

    def _context_of(self, job_state: Any, event: str) -> ActivationContext:
        """What routes an emit for ``job_state`` when the calling thread runs no activation
        of it (a helper thread the logic started)."""
        live = getattr(job_state, "_live_run", None)
        if live is None:
            status = getattr(job_state, "status", "unknown")
            raise NoJobContextError(
                f"{type(self).__name__}.emit({event!r}, job_state=...): job "
                f"{getattr(job_state, 'job_id', '?')} is not running (status {status}); "
                "emit only while the job runs, from its logic or a thread the logic waits for"
            )
        context: ActivationContext = live
        return context

    # -- state of this routine in a job (the original routilux's helpers) -----------------

    def get_state(self, job_state: JobState, key: str | None = None, default: Any = None) -> Any:
        """This routine's state dict in the job (a copy), or one ``key`` of it."""
        state = job_state.get_routine_state(self._id_in(job_state), None)
        if key is None:
            return state if state is not None else default
        return default if state is None else state.get(key, default)

    def set_state(self, job_state: JobState, key: str, value: Any) -> None:
        """Set one key of this routine's state in the job."""
        job_state.update_routine_state(self._id_in(job_state), {key: value})

    def update_state(self, job_state: JobState, updates: dict[str, Any]) -> None:
        """Merge ``updates`` into this routine's state in the job."""
        job_state.update_routine_state(self._id_in(job_state), updates)

    def _id_in(self, job_state: Any) -> str:
        """This routine's id in the flow of ``job_state``."""
        ctx = current_activation.get()
        if ctx is not None and ctx.job_state is job_state and getattr(ctx, "routine", None) is self:
            return ctx.routine_id
        flow_ref = getattr(job_state, "_flow", None)
        flow = flow_ref() if flow_ref is not None else None
        if flow is not None:
            for routine_id, routine in flow.routines.items():
                if routine is self:
                    return str(routine_id)
        raise RoutiluxError(
            f"{type(self).__name__}: cannot tell this routine's id in job "
            f"{getattr(job_state, 'job_id', '?')}: the routine is not part of its flow "
            f"{getattr(job_state, 'flow_id', '?')!r}, or the job never ran (use "
            "job_state.get_routine_state(routine_id) with the id)"
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} slots={list(self._slots)} events={list(self._events)}>"


def _check_name(kind: str, name: object, routine: Routine) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(
            f"{type(routine).__name__}: a {kind} name must be a non-empty string, got {name!r}"
        )
