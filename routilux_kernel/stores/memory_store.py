"""The ``memory`` job store: keeps nothing beyond the Runtime's own retention (the default)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from routilux_kernel.core.job_store import (
    DEFAULT_LIST_LIMIT,
    ActivationCommit,
    JobStore,
    JobUpdate,
    NewJob,
    ProcessIdentity,
    StoredJob,
)
from routilux_kernel.core.markers import hookimpl
from routilux_kernel.core.value_codecs import CODECS


class MemoryJobStore(JobStore):
    """Jobs live in the Runtime only; the engine records no checkpoints for it."""

    durable = False

    def __init__(self, url: str = "memory") -> None:
        super().__init__(url, CODECS["json"])

    def job_created(self, job: NewJob) -> None:
        pass

    def activation_committed(self, commit: ActivationCommit) -> None:
        pass

    def job_updated(self, update: JobUpdate) -> None:
        pass

    def list_jobs(
        self,
        status: str | None = None,
        flow_id: str | None = None,
        limit: int = DEFAULT_LIST_LIMIT,
    ) -> list[dict[str, Any]]:
        return []

    def load_job(self, job_id: str) -> StoredJob | None:
        return None

    def interrupted_jobs(self) -> list[tuple[str, float | None]]:
        return []

    def claim(self, job_id: str, owner: ProcessIdentity) -> StoredJob | None:
        return None

    def prune(self, finished_before: float) -> int:
        return 0


@hookimpl
def register_job_stores(register: Callable[..., None]) -> None:
    register("memory", MemoryJobStore)
