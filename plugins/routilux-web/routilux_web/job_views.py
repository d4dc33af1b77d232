"""What the dashboard shows of one stored job: its details, routine statuses and timeline.

Everything is read through the job-store contract; the details have the shape of
``routilux jobs show --json`` (``JobState.to_dict`` plus what was stored).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from routilux_kernel.cli.jobs_command import job_details
from routilux_kernel.core.job_store import JobStore

#: Width in pixels of the timeline's time axis.
TIMELINE_WIDTH = 720
TIMELINE_ROW = 26
TIMELINE_LABEL = 150


def load_details(store: JobStore, job_id: str) -> dict[str, Any] | None:
    """Everything stored of a job (``jobs show --json`` shape), or None if it is unknown."""
    stored = store.load_job(job_id)
    return None if stored is None else job_details(store, stored)


def routine_statuses(details: dict[str, Any]) -> dict[str, str]:
    """Each routine's status in this job, from its activations and the job's errors.

    ``completed``: its last activation completed; ``failed``: its last one failed;
    ``retried``: it failed and then completed (a retry is one row with ``attempt`` > 0);
    ``waiting``: not run (yet).
    """
    statuses: dict[str, str] = {}
    for row in details.get("activations", []):
        before = statuses.get(row["routine_id"])
        if row["outcome"] == "failed":
            statuses[row["routine_id"]] = "failed"
        elif before in ("failed", "retried") or row.get("attempt", 0) > 0:
            statuses[row["routine_id"]] = "retried"
        else:
            statuses[row["routine_id"]] = "completed"
    error_routine = details.get("error_routine_id")
    if error_routine and details.get("status") == "failed":
        statuses[error_routine] = "failed"
    for routine_id in (details.get("flow") or {}).get("routines", {}):
        statuses.setdefault(routine_id, "waiting")
    return statuses


@dataclass(frozen=True)
class TimelineBar:
    number: int
    routine_id: str
    x: float
    width: float
    y: int
    outcome: str
    attempt: int
    milliseconds: float
    error: str | None


@dataclass(frozen=True)
class Timeline:
    bars: list[TimelineBar]
    rows: list[str]  # routine ids, top to bottom
    total_milliseconds: float
    width: int = TIMELINE_WIDTH
    label_width: int = TIMELINE_LABEL
    row_height: int = TIMELINE_ROW


def timeline(details: dict[str, Any]) -> Timeline:
    """A Gantt chart: one row per routine, one bar per activation (retries are more bars)."""
    rows_with_time = [
        row
        for row in details.get("activations", [])
        if row.get("started_at") is not None and row.get("finished_at") is not None
    ]
    if not rows_with_time:
        return Timeline([], [], 0.0)
    start = min(row["started_at"] for row in rows_with_time)
    end = max(row["finished_at"] for row in rows_with_time)
    span = max(end - start, 1e-6)
    routine_rows: list[str] = []
    for row in rows_with_time:
        if row["routine_id"] not in routine_rows:
            routine_rows.append(row["routine_id"])
    bars = [
        TimelineBar(
            number=row["number"],
            routine_id=row["routine_id"],
            x=TIMELINE_LABEL + (row["started_at"] - start) / span * TIMELINE_WIDTH,
            width=max((row["finished_at"] - row["started_at"]) / span * TIMELINE_WIDTH, 2.0),
            y=routine_rows.index(row["routine_id"]) * TIMELINE_ROW,
            outcome=row["outcome"],
            attempt=row["attempt"],
            milliseconds=(row["finished_at"] - row["started_at"]) * 1000,
            error=row.get("error"),
        )
        for row in rows_with_time
    ]
    return Timeline(bars, routine_rows, span * 1000)


def job_errors(details: dict[str, Any]) -> list[dict[str, Any]]:
    """Every error of the job, each with its traceback where one was stored."""
    errors: list[dict[str, Any]] = []
    for row in details.get("activations", []):
        if row.get("error"):
            errors.append(
                {
                    "where": f"activation #{row['number']} of {row['routine_id']} "
                    f"(try {row['attempt']})",
                    "error": row["error"],
                    "traceback": row.get("traceback"),
                }
            )
    if details.get("error") and not any(e["error"] == details["error"] for e in errors):
        errors.append(
            {"where": "job", "error": details["error"], "traceback": details.get("traceback")}
        )
    return errors
