"""The ``postgresql://`` job store: one database shared by many drivers on many machines.

Same contract and guarantees as the built-in SQLite store (``core/job_store.py``): grouped
writes, checkpoints committed whole, a versioned schema, owners told apart by pid, host and
start time on the same machine and by a lease elsewhere. What a server adds: a claim is one
transaction that locks the job's row with ``SELECT ... FOR UPDATE SKIP LOCKED``, so of any
number of recoverers started at once exactly one takes a job, and the others move on at once
instead of queueing behind it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from routilux_kernel.core.job_store import (
    ACTIVATION_COLUMNS,
    DEFAULT_LIST_LIMIT,
    JOB_COLUMNS,
    TERMINAL_STATUSES,
    JobStore,
    JobStoreError,
    ProcessIdentity,
    StoredJob,
    activation_from_row,
    process_is_alive,
    stored_job_from_row,
)
from routilux_kernel.core.value_codecs import codec_named
from routilux_kernel.stores.grouped_writer import GroupedWrites
from routilux_postgres.address import parse_address
from routilux_postgres.schema import check_for_reading, check_serializer, prepare_for_writing
from routilux_postgres.writer import DB_NOW, LEASE_SECONDS, PostgresWriter, first_line

#: Seconds to wait for a connection (to reach the server, or a free one in the pool).
CONNECT_TIMEOUT = 10.0
_SUMMARY = ("job_id", "flow_id", "status", "created_at", "started_at", "finished_at", "error")
_UNFINISHED = f"status NOT IN {TERMINAL_STATUSES}"


class PostgresJobStore(GroupedWrites, JobStore):
    """A job store in tables of one PostgreSQL schema, reached through a connection pool."""

    def __init__(self, url: str) -> None:
        address = parse_address(url)
        super().__init__(address.url, codec_named(address.serializer, address.url))
        self.address = address
        self.owner = ProcessIdentity.current()
        self._pool: ConnectionPool | None = None
        self._writer: PostgresWriter | None = None
        self._tables_ready = False  # the tables exist at the current version
        self._lock = threading.Lock()

    # -- connections -------------------------------------------------------------------------

    def _pool_for(self) -> ConnectionPool:
        pool = self._pool
        if pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = self._open_pool()
                pool = self._pool
        return pool

    def _open_pool(self) -> ConnectionPool:
        options = f"-c search_path={self.address.schema}"
        connect_options: dict[str, Any] = {
            "options": options,
            "connect_timeout": int(CONNECT_TIMEOUT),
        }
        pool = ConnectionPool(
            self.address.conninfo,
            kwargs=connect_options,
            min_size=1,
            max_size=self.address.pool_max,
            timeout=CONNECT_TIMEOUT,
            name=f"routilux-store-{self.address.schema}",
            open=False,
        )
        try:
            # The first connection is made here, so a server that cannot be reached is
            # reported by this store, naming it, rather than by a pool thread's warnings.
            with psycopg.connect(self.address.conninfo, **connect_options):
                pass
        except psycopg.Error as exc:
            raise JobStoreError(
                f"job store {self.url!r}: cannot connect to PostgreSQL: {first_line(exc)}"
            ) from None
        pool.open(wait=True, timeout=CONNECT_TIMEOUT)
        return pool

    @contextmanager
    def _connection(self, doing: str) -> Iterator[psycopg.Connection]:
        """A pooled connection; a database error becomes a JobStoreError saying what failed."""
        try:
            with self._pool_for().connection() as connection:
                yield connection
        except (psycopg.Error, PoolTimeout) as exc:
            raise JobStoreError(
                f"job store {self.url!r}: {doing} failed: {first_line(exc)}"
            ) from None

    def _readable(self) -> bool:
        """True if jobs were stored (the tables are there and current)."""
        if not self._tables_ready:
            with self._connection("reading the schema version") as connection:
                self._tables_ready = check_for_reading(connection, self.url, self.address.schema)
        return self._tables_ready

    # -- writes ----------------------------------------------------------------------------

    def _writer_for(self) -> PostgresWriter:
        writer = self._writer
        if writer is None:
            with self._lock:
                if self._writer is None:
                    self._prepare_tables()
                    self._writer = PostgresWriter(self.url, self._pool_for_locked(), self.owner)
                    self._writes_to(self._writer)
                writer = self._writer
        return writer

    def _pool_for_locked(self) -> ConnectionPool:
        if self._pool is None:
            self._pool = self._open_pool()
        return self._pool

    def _prepare_tables(self) -> None:
        pool = self._pool_for_locked()
        try:
            with pool.connection() as connection:
                prepare_for_writing(connection, self.url, self.address.schema)
                check_serializer(connection, self.url, self.codec.name)
        except (psycopg.Error, PoolTimeout) as exc:
            raise JobStoreError(
                f"job store {self.url!r}: creating or migrating the tables of schema "
                f"{self.address.schema!r} failed: {first_line(exc)}"
            ) from None
        self._tables_ready = True

    def close(self) -> None:
        with self._lock:
            writer, self._writer = self._writer, None
            self._writes_to(None)
            pool, self._pool = self._pool, None
        if writer is not None:
            writer.close()
        if pool is not None:
            pool.close()

    # -- reads -------------------------------------------------------------------------------

    def list_jobs(
        self,
        status: str | None = None,
        flow_id: str | None = None,
        limit: int = DEFAULT_LIST_LIMIT,
    ) -> list[dict[str, Any]]:
        if not self._readable():
            return []
        where, args = [], []
        if status is not None:
            where.append("status = %s")
            args.append(status)
        if flow_id is not None:
            where.append("flow_id = %s")
            args.append(flow_id)
        query = (
            f"SELECT {', '.join(_SUMMARY)}, owner_pid, owner_host, "
            "(SELECT count(*) FROM routilux_activations a WHERE a.job_id = j.job_id) "
            "FROM routilux_jobs j"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY created_at DESC, job_id LIMIT %s"
        )
        with self._connection("listing jobs") as connection:
            rows = connection.execute(query, (*args, limit)).fetchall()
        names = [*_SUMMARY, "owner_pid", "owner_host", "activations"]
        return [dict(zip(names, row, strict=True)) for row in rows]

    def load_job(self, job_id: str) -> StoredJob | None:
        if not self._readable():
            return None
        with self._connection(f"loading job {job_id}") as connection:
            return self._load(connection, job_id)

    def _load(self, connection: psycopg.Connection, job_id: str) -> StoredJob | None:
        row = connection.execute(
            f"SELECT {JOB_COLUMNS} FROM routilux_jobs j "
            "LEFT JOIN routilux_flows f ON f.flow_key = j.flow_key WHERE j.job_id = %s",
            (job_id,),
        ).fetchone()
        if row is None:
            return None
        activations = [
            activation_from_row(activation)
            for activation in connection.execute(
                f"SELECT {ACTIVATION_COLUMNS} FROM routilux_activations WHERE job_id = %s "
                "ORDER BY seq",
                (job_id,),
            )
        ]
        return stored_job_from_row(row, activations, self.codec.decode)

    # -- recovery ----------------------------------------------------------------------------

    def interrupted_jobs(self) -> list[tuple[str, float | None]]:
        if not self._readable():
            return []
        with self._connection("finding interrupted jobs") as connection:
            rows = connection.execute(
                f"SELECT job_id, owner_pid, owner_host, owner_started, lease_until, {DB_NOW} "
                f"FROM routilux_jobs WHERE {_UNFINISHED} ORDER BY created_at"
            ).fetchall()
        found = []
        for job_id, pid, host, started, lease_until, now in rows:
            wait = self._owner_wait(ProcessIdentity(pid, host, started or ""), lease_until, now)
            if wait is not False:
                found.append((job_id, wait))
        return found

    def _owner_wait(
        self, owner: ProcessIdentity, lease_until: float | None, now: float
    ) -> float | None | bool:
        """None: the owner is gone; seconds: wait for its lease; False: it is alive."""
        if owner == self.owner:
            return False  # this very process runs it
        if owner.host == self.owner.host:
            return False if process_is_alive(owner) else None
        left = (lease_until or 0.0) - now
        return None if left <= 0 else left

    def claim(self, job_id: str, owner: ProcessIdentity) -> StoredJob | None:
        if not self._readable():
            return None
        with self._connection(f"claiming job {job_id}") as connection:
            with connection.transaction():
                # A row another recoverer is claiming right now is skipped, not waited for:
                # that one takes it, and this one reports it cannot be taken.
                row = connection.execute(
                    "SELECT status, owner_pid, owner_host, owner_started, lease_until, "
                    f"{DB_NOW} FROM routilux_jobs WHERE job_id = %s FOR UPDATE SKIP LOCKED",
                    (job_id,),
                ).fetchone()
                if row is None or row[0] in TERMINAL_STATUSES:
                    return None
                previous = ProcessIdentity(row[1], row[2], row[3] or "")
                if self._owner_wait(previous, row[4], row[5]) is not None:
                    return None
                connection.execute(
                    "UPDATE routilux_jobs SET owner_pid = %s, owner_host = %s, "
                    f"owner_started = %s, lease_until = {DB_NOW} + %s, status = 'running' "
                    "WHERE job_id = %s",
                    (owner.pid, owner.host, owner.started, LEASE_SECONDS, job_id),
                )
            return self._load(connection, job_id)

    def prune(self, finished_before: float) -> int:
        if not self._readable():
            return 0
        with self._connection("pruning finished jobs") as connection, connection.transaction():
            ids = [
                row[0]
                for row in connection.execute(
                    "DELETE FROM routilux_jobs WHERE status = ANY(%s) AND finished_at < %s "
                    "RETURNING job_id",
                    (list(TERMINAL_STATUSES), finished_before),
                )
            ]
            connection.execute("DELETE FROM routilux_activations WHERE job_id = ANY(%s)", (ids,))
            connection.execute(
                "DELETE FROM routilux_flows f WHERE NOT EXISTS "
                "(SELECT 1 FROM routilux_jobs j WHERE j.flow_key = f.flow_key)"
            )
        return len(ids)
