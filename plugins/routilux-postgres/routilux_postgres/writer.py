"""Grouped writes to a PostgreSQL job store: the kernel's grouped writer thread
(``routilux_kernel.stores.grouped_writer``: writes in the order handed over, gathered into
one transaction) committing on a pooled connection (psycopg pipelines ``executemany``), so a
busy driver pays one round trip per group rather than per row. Every transaction of the
writer also renews the lease of the jobs its process owns, at most every
``LEASE_SECONDS / 3``. Leases are on the database's clock, so drivers on
machines whose clocks differ still agree when a lease ran out.

A failed transaction (the server gone, a disk full) is rolled back: what was committed
before stays, and the store takes no more writes, so the engine fails the jobs that depend
on it and ``routilux jobs resume --interrupted`` finishes them once the fault is fixed.
"""

from __future__ import annotations

import json
import time
from typing import Any

import psycopg
from loguru import logger
from psycopg_pool import ConnectionPool, PoolTimeout

from routilux_kernel.core.job_store import (
    ActivationCommit,
    JobStoreError,
    JobUpdate,
    NewJob,
    ProcessIdentity,
)
from routilux_kernel.stores.grouped_writer import GroupedWriter, Write

#: Seconds an owner's claim on its running jobs lasts without renewal (other hosts wait it out).
LEASE_SECONDS = 30.0
#: The database's clock, in seconds since the epoch (what leases are measured on).
DB_NOW = "extract(epoch from clock_timestamp())"


class PostgresWriter(GroupedWriter):
    """The writer thread of one PostgreSQL store in one process (the kernel's grouped writer,
    committing on a pooled connection)."""

    def __init__(self, url: str, pool: ConnectionPool, owner: ProcessIdentity) -> None:
        self._pool = pool
        super().__init__(url, owner, "routilux-postgres-writer")

    def _commit(self, batch: list[Write], flows: dict[str, str | None]) -> None:
        if self.failure is not None:
            return  # dropped: the engine was told and fails the jobs concerned
        try:
            with self._pool.connection() as connection, connection.transaction():
                self._write(connection, batch, flows)
        except (psycopg.Error, PoolTimeout) as exc:
            reason = f"{type(exc).__name__}: {first_line(exc)}"
            failure = JobStoreError(
                f"job store {self.url!r}: a write failed ({reason}); what was committed "
                "before is kept, the jobs running in this process fail and "
                "'routilux jobs resume --interrupted' finishes them once the fault is fixed"
            )
            logger.error("{}", failure)
            with self._changed:
                self.failure = failure

    def _write(
        self, connection: psycopg.Connection, batch: list[Write], flows: dict[str, str | None]
    ) -> None:
        jobs = [w for w in batch if isinstance(w, NewJob)]
        commits = [w for w in batch if isinstance(w, ActivationCommit)]
        updates = [w for w in batch if isinstance(w, JobUpdate)]
        with connection.cursor() as cursor:
            if flows:
                cursor.executemany(
                    "INSERT INTO routilux_flows (flow_key, snapshot) VALUES (%s, %s) "
                    "ON CONFLICT (flow_key) DO NOTHING",
                    list(flows.items()),
                )
            if jobs:
                # A job created again under an old id replaces it, history included.
                cursor.execute(
                    "DELETE FROM routilux_activations WHERE job_id = ANY(%s)",
                    ([j.job_id for j in jobs],),
                )
                cursor.executemany(
                    "INSERT INTO routilux_jobs (job_id, flow_id, flow_key, flow_source, status, "
                    "created_at, owner_pid, owner_host, owner_started, lease_until, entry_items) "
                    f"VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, {DB_NOW} + %s, %s) "
                    "ON CONFLICT (job_id) DO UPDATE SET flow_id = excluded.flow_id, "
                    "flow_key = excluded.flow_key, flow_source = excluded.flow_source, "
                    "status = excluded.status, created_at = excluded.created_at, "
                    "started_at = NULL, finished_at = NULL, error = NULL, traceback = NULL, "
                    "owner_pid = excluded.owner_pid, owner_host = excluded.owner_host, "
                    "owner_started = excluded.owner_started, "
                    "lease_until = excluded.lease_until, entry_items = excluded.entry_items, "
                    "final_state = NULL",
                    [_job_row(j, self._flow_keys) for j in jobs],
                )
            if commits:
                cursor.executemany(
                    "INSERT INTO routilux_activations (job_id, number, routine_id, started_at, "
                    "finished_at, outcome, attempt, error, traceback, consumed, effects) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (job_id, number) DO UPDATE SET routine_id = excluded.routine_id, "
                    "started_at = excluded.started_at, finished_at = excluded.finished_at, "
                    "outcome = excluded.outcome, attempt = excluded.attempt, "
                    "error = excluded.error, traceback = excluded.traceback, "
                    "consumed = excluded.consumed, effects = excluded.effects",
                    [c.row() for c in commits],
                )
            if updates:
                cursor.executemany(
                    "UPDATE routilux_jobs SET status = %s, started_at = %s, finished_at = %s, "
                    "error = %s, traceback = %s, final_state = %s WHERE job_id = %s",
                    [
                        (
                            u.status,
                            u.started_at,
                            u.finished_at,
                            u.error,
                            u.traceback,
                            u.final_state,
                            u.job_id,
                        )
                        for u in updates
                    ],
                )
            now = time.time()
            if now >= self._next_lease:
                owner = self.owner
                cursor.execute(
                    f"UPDATE routilux_jobs SET lease_until = {DB_NOW} + %s WHERE owner_pid = %s "
                    "AND owner_host = %s AND owner_started = %s "
                    "AND status IN ('running', 'pending')",
                    (LEASE_SECONDS, owner.pid, owner.host, owner.started),
                )
                self._next_lease = now + LEASE_SECONDS / 3


def _job_row(job: NewJob, flow_keys: dict[str, str]) -> tuple[Any, ...]:
    # Entry data is already JSON text (encoded by the store's codec): spliced in, not re-parsed.
    items = (
        "["
        + ",".join(
            f"[{n},{json.dumps(rid)},{json.dumps(slot)},{data}]"
            for n, rid, slot, data in job.entry_items
        )
        + "]"
    )
    return (
        job.job_id,
        job.flow_id,
        None if job.flow_snapshot is None else flow_keys.get(job.flow_snapshot),
        job.flow_source,
        job.status,
        job.created_at,
        job.owner.pid,
        job.owner.host,
        job.owner.started,
        LEASE_SECONDS,
        items,
    )


def first_line(exc: BaseException) -> str:
    """The server's message without its DETAIL lines (which may quote a whole row of data)."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
