"""The activation running in the current thread, found through a context variable."""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from routilux_kernel.job_state import JobState
    from routilux_kernel.routine import Routine


class ActivationContext(Protocol):
    """What ``Routine.emit`` and ``JobState.current_routine_id`` need from a running activation."""

    job_state: JobState
    routine_id: str

    def emit(self, routine: Routine, event: str, data: dict[str, Any]) -> None:
        """Route (or, remotely, record) one emitted event."""


current_activation: ContextVar[ActivationContext | None] = ContextVar(
    "routilux_current_activation", default=None
)
