"""What ``routilux run`` reports about finished jobs: text for people, records for --json."""

from __future__ import annotations

import reprlib
from typing import Any

from routilux_kernel.cli.flow_arguments import effective_executor
from routilux_kernel.core.errors import RoutineError, exception_text
from routilux_kernel.core.flow import Flow
from routilux_kernel.core.job_state import ExecutionStatus, JobState

#: Longest rendering of one value in the text summary.
VALUE_WIDTH = 100
#: How many shared_log entries the text summary shows per job (the last ones).
LOG_ENTRIES_SHOWN = 3


def job_record(state: JobState) -> dict[str, Any]:
    """``JobState.to_dict()`` plus ``duration``; errors are text."""
    record = state.to_dict()
    record["duration"] = state.duration
    if isinstance(state.exception, RoutineError):
        record["error"] = str(state.exception)
    return record


def summary_lines(
    flow: Flow, states: list[JobState], elapsed: float, cli_executor: str | None
) -> list[str]:
    """A block per job (status, error and routine at fault, timings, log, states), then totals."""
    lines: list[str] = []
    total = len(states)
    for index, state in enumerate(states, 1):
        flag = " with data left unconsumed" if left_data_unconsumed(state) else ""
        lines.append(f"job {index}/{total} {state.job_id} {state.status}{flag} {_timing(state)}")
        lines.extend("    " + line for line in _details(state))
    counts = {status: 0 for status in ExecutionStatus}
    for state in states:
        counts[state.status] += 1
    parts = [f"{counts[s]} {s}" for s in ExecutionStatus if counts[s] or s in _ALWAYS_COUNTED]
    lines.append(
        f"flow {flow.flow_id!r}: {total} job{'s' if total != 1 else ''}, {', '.join(parts)} "
        f"in {elapsed:.2f}s ({_executors(flow, cli_executor)})"
    )
    leaving = sum(1 for state in states if left_data_unconsumed(state))
    if leaving:
        lines.append(
            f"warning: {leaving} completed job{'s' if leaving != 1 else ''} left data "
            "unconsumed in slots (a join that never fired?); routilux run --strict fails on it"
        )
    return lines


def left_data_unconsumed(state: JobState) -> bool:
    """A completed job with data still in a slot: what ``--strict`` fails on."""
    if state.status != ExecutionStatus.COMPLETED:
        return False
    return any(items for slots in dict(state.unconsumed).values() for items in slots.values())


_ALWAYS_COUNTED = (ExecutionStatus.COMPLETED, ExecutionStatus.FAILED)


def error_text(error: BaseException) -> str:
    if isinstance(error, RoutineError):
        return str(error)  # already "Type: message" of the original exception
    return f"{type(error).__name__}: {exception_text(error)}"


def _timing(state: JobState) -> str:
    if state.duration is None:
        return "(never started)"
    queued = ""
    if state.started_at is not None and state.started_at - state.created_at >= 0.0005:
        queued = f", waited {state.started_at - state.created_at:.3f}s to start"
    return f"in {state.duration:.3f}s{queued}"


def _details(state: JobState) -> list[str]:
    lines = []
    if state.exception is not None:
        where = f"routine {state.error_routine_id!r}" if state.error_routine_id else "the job"
        lines.append(f"error in {where}: {_short(error_text(state.exception))}")
    if state.shared_data:
        lines.append(f"shared_data: {_short(dict(state.shared_data))}")
    for entry in state.errors:
        if entry.get("action") == "stop":
            continue  # that is the job's error, shown above
        lines.append(
            f"recorded error in routine {entry.get('routine_id')!r} ({entry.get('action')}, "
            f"job went on): {entry.get('error_type')}: {_short(entry.get('error'))}"
        )
    retries: dict[str, int] = {}
    for _, routine_id, kind, _ in list(state.history):
        if kind == "retry":
            retries[routine_id] = retries.get(routine_id, 0) + 1
    if retries:
        lines.append("retried: " + ", ".join(f"{rid} {n}x" for rid, n in retries.items()))
    if state.skipped_routines:
        lines.append(f"skipped routines: {', '.join(sorted(state.skipped_routines))}")
    for routine_id, slots in state.unconsumed.items():
        for slot, items in slots.items():
            lines.append(f"left unconsumed in {routine_id}.{slot}: {len(items)} item(s)")
    log = list(state.shared_log)
    if log:
        shown = log[-LOG_ENTRIES_SHOWN:]
        more = f" (last {len(shown)} shown)" if len(log) > len(shown) else ""
        lines.append(f"shared_log: {len(log)} entr{'ies' if len(log) != 1 else 'y'}{more}")
        lines.extend(f"  {_short(entry)}" for entry in shown)
    routine_states = state.routine_states
    if routine_states:
        lines.append("routine states:")
        lines.extend(f"  {rid}: {_short(value)}" for rid, value in routine_states.items())
    return lines


def _executors(flow: Flow, cli_executor: str | None) -> str:
    chosen: dict[str, list[str]] = {}
    for routine_id, routine in flow.routines.items():
        name, _ = effective_executor(routine, flow, cli_executor)
        chosen.setdefault(name, []).append(routine_id)
    if len(chosen) == 1:
        return f"executor {next(iter(chosen))}"
    return "executors " + "; ".join(f"{name}: {', '.join(ids)}" for name, ids in chosen.items())


def _bounded_repr() -> reprlib.Repr:
    """A repr that stops early, so a huge value is never rendered whole just to be cut."""
    bounded = reprlib.Repr()
    bounded.maxlevel = 3
    bounded.maxdict = bounded.maxlist = bounded.maxtuple = bounded.maxset = 8
    bounded.maxstring = VALUE_WIDTH
    bounded.maxother = 60
    return bounded


_BOUNDED = _bounded_repr()


def _short(value: Any) -> str:
    try:
        text = value if isinstance(value, str) else _BOUNDED.repr(value)
    except Exception as exc:  # a user object whose repr raises
        text = f"<{type(value).__name__} whose repr() raised {type(exc).__name__}>"
    text = " ".join(text[: VALUE_WIDTH * 4].split())
    return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 3] + "..."
