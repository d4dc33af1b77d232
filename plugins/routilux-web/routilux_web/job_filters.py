"""Reading the job filters of a request (``status``, ``flow``, ``since``, ``until``, paging).

The pages and the API take the same query parameters; a bad one is a clear error naming
the parameter and what was expected.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from routilux_kernel.core.job_state import ExecutionStatus
from routilux_kernel.core.job_store import JobQuery

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
STATUSES = tuple(str(status) for status in ExecutionStatus)


class FilterError(ValueError):
    """A query parameter that cannot be used; the message names it and what was expected."""


def job_query(params: Mapping[str, str]) -> JobQuery:
    status = params.get("status") or None
    if status is not None and status not in STATUSES:
        raise FilterError(f"status={status!r}: expected one of {', '.join(STATUSES)}")
    limit = _whole_number(params, "limit", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    return JobQuery(
        status=status,
        flow_id=params.get("flow") or None,
        created_after=_time(params, "since"),
        created_before=_time(params, "until"),
        limit=limit,
        offset=_whole_number(params, "offset", 0, 0, None),
    )


def _whole_number(
    params: Mapping[str, str], name: str, default: int, lowest: int, highest: int | None
) -> int:
    text = params.get(name)
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = lowest - 1
    if value < lowest or (highest is not None and value > highest):
        upper = f" and <= {highest}" if highest is not None else ""
        raise FilterError(f"{name}={text!r}: expected a whole number >= {lowest}{upper}")
    return value


def _time(params: Mapping[str, str], name: str) -> float | None:
    """Epoch seconds, or an ISO 8601 date/time (local time when it names no zone)."""
    text = params.get(name)
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise FilterError(
            f"{name}={text!r}: expected epoch seconds or an ISO 8601 time like 2025-01-31T12:00"
        ) from None
