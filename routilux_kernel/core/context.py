"""The activation running in the current thread, and what hooks see of an activation.

``current_activation`` is how ``Routine.emit`` and ``JobState.current_routine_id`` find the
job they run in. The engine sets it for in-process logic; a remote worker sets its own.
The types here are protocols so the contracts never depend on who implements them.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, Protocol

from routilux_kernel.core.markers import hookimpl


class ActivationContext(Protocol):
    """What ``Routine.emit`` and ``JobState.current_routine_id`` need from a running activation."""

    #: The JobState (or a remote worker's view of it) the logic runs against.
    job_state: Any
    routine_id: str

    def emit(self, routine: Any, event: str, data: dict[str, Any]) -> None:
        """Route (or, remotely, record) one emitted event of ``routine``."""


class ActivationView(Protocol):
    """What a ``run_activation`` hook receives: one run of a routine's logic on its data."""

    routine_id: str
    routine: Any
    slot_data: dict[str, list[dict[str, Any]]]
    policy_message: Any
    job_state: Any
    #: Unique among the activations of the driver process; the same for every attempt.
    activation_id: int
    #: 0 for the first run, 1 for the first retry, and so on.
    attempt: int
    #: What ``remote_activation_context`` hooks attached on the driver (remote workers);
    #: empty for in-process activations.
    context: Mapping[str, Any]

    def call_logic(self) -> Any:
        """Run the routine's logic on this activation's data."""


#: The ``context`` of an activation no hook attached anything to.
NO_CONTEXT: Mapping[str, Any] = MappingProxyType({})

current_activation: ContextVar[ActivationContext | None] = ContextVar(
    "routilux_current_activation", default=None
)


@hookimpl(trylast=True)
def run_activation(activation: ActivationView) -> Any:
    """The innermost ``run_activation``: call the logic. Plugins wrap it."""
    return activation.call_logic()
