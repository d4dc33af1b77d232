"""One entry of a job's execution history: a finished activation of one routine."""

from __future__ import annotations

from typing import Any, NamedTuple

#: Outcomes the engine records; ``record_execution`` also accepts any other name (as the
#: original routilux's event names), which it stores as given.
COMPLETED = "completed"
FAILED = "failed"
SKIPPED = "skipped"
RETRIED = "retried"


class ExecutionRecord(NamedTuple):
    """A finished activation: which routine, when, how it ended, and which attempt it was.

    ``outcome`` is ``completed``, ``failed`` (the error ended the job or was recorded by
    CONTINUE), ``skipped`` (SKIP took the routine out of the job) or ``retried`` (a retry
    is scheduled). ``attempt`` counts retries of the same activation, from 0. ``data`` is
    what a caller of :meth:`JobState.record_execution` attached (the engine attaches none).
    A tuple, so the engine's record costs one allocation; a job store can persist it as is.
    """

    routine_id: str
    outcome: str
    started_at: float
    finished_at: float
    attempt: int = 0
    data: dict[str, Any] | None = None

    @property
    def event_name(self) -> str:
        """The original routilux's name for ``outcome``."""
        return self.outcome

    @property
    def timestamp(self) -> float:
        """When the activation finished (the original routilux's name)."""
        return self.finished_at

    @property
    def duration(self) -> float:
        return self.finished_at - self.started_at

    def to_dict(self) -> dict[str, Any]:
        entry = self._asdict()
        if entry["data"] is None:
            del entry["data"]
        return entry
