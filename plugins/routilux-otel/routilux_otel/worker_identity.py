"""Which worker ran a remote activation: told by the worker, read on the driver.

Today's hooks give a plugin no channel from a worker back to the driver's hooks, except
what the activation's logic may do: the worker-side ``run_activation`` wrapper writes one
entry into the job's history (``job_state.record``, replayed on the driver before
``routine_finished``), and the driver reads the newest such entry of the routine.
"""

from __future__ import annotations

import os
from typing import Any

from routilux_otel import attributes as names

#: The history ``kind`` of the entry a worker records for each remote activation.
WORKER_RECORD = "routilux_otel.worker"

_identity: dict[str, Any] | None = None


def remember_worker(worker: Any) -> None:
    """Keep what ``worker_setup`` says about this worker process (name, pid, address)."""
    global _identity
    identity: dict[str, Any] = {
        names.WORKER_EXECUTOR: str(getattr(worker, "executor", "")),
        names.WORKER_NAME: str(getattr(worker, "name", "")),
        names.WORKER_PID: int(getattr(worker, "pid", os.getpid())),
    }
    address = getattr(getattr(worker, "backend", None), "address", None)
    if address:
        identity[names.WORKER_ADDRESS] = str(address)
    _identity = identity


def record_worker(job_state: Any, routine_id: str) -> None:
    """In the worker: note this worker in the activation's job history."""
    identity = _identity if _identity is not None else {names.WORKER_PID: os.getpid()}
    job_state.record(routine_id, WORKER_RECORD, identity)


def worker_of(job_state: Any, routine_id: str, since: float) -> dict[str, Any] | None:
    """On the driver: the worker that ran ``routine_id``'s activation handed over at ``since``.

    Activations of one routine in one job run one at a time, so the newest entry recorded
    after the hand-over belongs to the activation that just finished.
    """
    for recorded_at, entry_routine, kind, detail in reversed(list(job_state.history)):
        if recorded_at < since:
            return None
        if kind == WORKER_RECORD and entry_routine == routine_id and isinstance(detail, dict):
            return detail
    return None
