"""The live view's source: server-sent events whenever the jobs a person watches change.

The store may be written by other processes (``routilux run`` next to ``routilux serve``),
so the server reads a small snapshot - counts by status, the running jobs, the newest
jobs and optionally one job - every ``interval`` seconds and sends it only when it differs
from the last one sent. A client that sends nothing still gets a comment every
``KEEPALIVE`` seconds, which also tells the server when the client has gone.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from routilux_kernel.core.job_store import JobQuery, JobStore
from routilux_web.job_filters import STATUSES

KEEPALIVE = 10.0
#: How many of the newest jobs the live view lists.
NEWEST_JOBS = 20


def live_snapshot(store: JobStore, job_id: str | None = None) -> dict[str, Any]:
    """What the live view shows: counts by status, running jobs, newest jobs, one job."""
    counts = {
        status: store.query_jobs(JobQuery(status=status, limit=1)).total for status in STATUSES
    }
    running = store.query_jobs(JobQuery(status="running", limit=NEWEST_JOBS)).jobs
    newest = store.query_jobs(JobQuery(limit=NEWEST_JOBS)).jobs
    snapshot: dict[str, Any] = {"counts": counts, "running": running, "newest": newest}
    if job_id is not None:
        stored = store.load_job(job_id)
        if stored is not None:
            snapshot["job"] = {
                "job_id": stored.job_id,
                "status": stored.status,
                "activations": len(stored.activations),
                "error": stored.error,
            }
    return snapshot


async def event_stream(
    request: Request, store: JobStore, interval: float, stopping: asyncio.Event, job_id: str | None
) -> AsyncIterator[str]:
    last = None
    quiet = 0.0
    while not stopping.is_set() and not await request.is_disconnected():
        text = json.dumps(await run_in_threadpool(live_snapshot, store, job_id), default=repr)
        if text != last:
            last = text
            quiet = 0.0
            yield f"event: jobs\ndata: {text}\n\n"
        elif quiet >= KEEPALIVE:
            quiet = 0.0
            yield ": still here\n\n"
        try:
            await asyncio.wait_for(stopping.wait(), interval)
        except TimeoutError:
            quiet += interval
