"""The ``sqlite:///`` job store: stdlib sqlite3, WAL, grouped writes, claims by transaction.

``sqlite:///runs.db`` is relative to the working directory, ``sqlite:////abs/runs.db``
absolute. ``?serializer=pickle`` keeps any picklable value (JSON is the default).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from routilux_kernel.core.job_store import (
    ACTIVATION_COLUMNS,
    DEFAULT_LIST_LIMIT,
    JOB_COLUMNS,
    TERMINAL_STATUSES,
    JobPage,
    JobQuery,
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
from routilux_kernel.stores.sqlite_schema import TICKS_PER_SECOND, connect, sqlite_path
from routilux_kernel.stores.sqlite_writer import SqliteWriter

_SUMMARY = (
    "job_id, flow_id, status, created_at, started_at, finished_at, error, owner_pid, owner_host"
)
#: How many activations job ``j`` committed: those in its row and those in rows of their own.
_ACTIVATION_COUNT = (
    "coalesce(json_array_length(j.first_activations), 0) + "
    "(SELECT count(*) FROM activations a WHERE a.job_id = j.job_id)"
)


class SqliteJobStore(GroupedWrites, JobStore):
    """A job store in one SQLite file, shared by the processes of one machine."""

    def __init__(self, url: str) -> None:
        query = parse_qs(url.partition("?")[2])
        unknown = sorted(set(query) - {"serializer"})
        if unknown:
            raise JobStoreError(
                f"job store {url!r}: unknown option(s) {', '.join(unknown)}; known: serializer"
            )
        super().__init__(url, codec_named(query.get("serializer", ["json"])[-1], url))
        self.path: Path = sqlite_path(url)
        self.owner = ProcessIdentity.current()
        self._writer: SqliteWriter | None = None
        self._writer_lock = threading.Lock()

    # -- writes ----------------------------------------------------------------------------

    def _writer_for(self) -> SqliteWriter:
        writer = self._writer
        if writer is None:
            with self._writer_lock:
                if self._writer is None:
                    connection = connect(self.url, self.path, write=True)
                    self._check_serializer(connection)
                    self._writer = SqliteWriter(self.url, connection, self.owner)
                    self._writes_to(self._writer)
                writer = self._writer
        return writer

    def _check_serializer(self, connection: sqlite3.Connection) -> None:
        row = connection.execute("SELECT value FROM meta WHERE key = 'serializer'").fetchone()
        if row is None:
            connection.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('serializer', ?)",
                (self.codec.name,),
            )
        elif row[0] != self.codec.name:
            connection.close()
            raise JobStoreError(
                f"job store {self.url!r}: {self.path} keeps values as {row[0]}, but the URL "
                f"asks for {self.codec.name}; use ?serializer={row[0]}"
            )

    def close(self) -> None:
        with self._writer_lock:
            writer, self._writer = self._writer, None
            self._writes_to(None)
        if writer is not None:
            writer.close()

    # -- reads -------------------------------------------------------------------------------

    def _read(self) -> sqlite3.Connection:
        return connect(self.url, self.path, write=False)

    def list_jobs(
        self,
        status: str | None = None,
        flow_id: str | None = None,
        limit: int = DEFAULT_LIST_LIMIT,
    ) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        where, args = [], []
        if status is not None:
            where.append("status = ?")
            args.append(status)
        if flow_id is not None:
            where.append("flow_id = ?")
            args.append(flow_id)
        sql = f"SELECT {_SUMMARY}, {_ACTIVATION_COUNT} FROM jobs j"
        sql += "" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY created_at DESC, job_id LIMIT ?"
        connection = self._read()
        try:
            rows = connection.execute(sql, (*args, limit)).fetchall()
        finally:
            connection.close()
        names = [*(name.strip() for name in _SUMMARY.split(",")), "activations"]
        return [dict(zip(names, row, strict=True)) for row in rows]

    def query_jobs(self, query: JobQuery) -> JobPage:
        if not self.path.exists():
            return JobPage([], 0)
        where, args = [], []
        for column, test, value in (
            ("status", "=", query.status),
            ("flow_id", "=", query.flow_id),
            ("created_at", ">=", query.created_after),
            ("created_at", "<", query.created_before),
        ):
            if value is not None:
                where.append(f"{column} {test} ?")
                args.append(value)
        condition = " WHERE " + " AND ".join(where) if where else ""
        connection = self._read()
        try:
            total = connection.execute(f"SELECT count(*) FROM jobs{condition}", args).fetchone()[0]
            rows = connection.execute(
                f"SELECT {_SUMMARY}, {_ACTIVATION_COUNT} FROM jobs j{condition} "
                "ORDER BY created_at DESC, job_id LIMIT ? OFFSET ?",
                (*args, query.limit, query.offset),
            ).fetchall()
        finally:
            connection.close()
        names = [*(name.strip() for name in _SUMMARY.split(",")), "activations"]
        return JobPage([dict(zip(names, row, strict=True)) for row in rows], total)

    def list_flows(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        connection = self._read()
        try:
            # One row per flow from the jobs_by_flow index; its newest job's definition.
            rows = connection.execute(
                "SELECT g.flow_id, g.jobs, g.last_created_at, (SELECT f.snapshot FROM jobs j "
                "JOIN flows f ON f.flow_key = j.flow_key WHERE j.flow_id = g.flow_id "
                "ORDER BY j.created_at DESC LIMIT 1) FROM (SELECT flow_id, count(*) AS jobs, "
                "max(created_at) AS last_created_at FROM jobs GROUP BY flow_id) g "
                "ORDER BY g.flow_id"
            ).fetchall()
        finally:
            connection.close()
        return [
            {
                "flow_id": flow_id,
                "jobs": jobs,
                "last_created_at": last,
                "flow": None if snapshot is None else json.loads(snapshot),
            }
            for flow_id, jobs, last, snapshot in rows
        ]

    def load_job(self, job_id: str) -> StoredJob | None:
        if not self.path.exists():
            return None
        connection = self._read()
        try:
            return self._load(connection, job_id)
        finally:
            connection.close()

    def _load(self, connection: sqlite3.Connection, job_id: str) -> StoredJob | None:
        row = connection.execute(
            f"SELECT {JOB_COLUMNS}, j.first_activations FROM jobs j "
            "LEFT JOIN flows f ON f.flow_key = j.flow_key WHERE j.job_id = ?",
            (job_id,),
        ).fetchone()
        if row is None:
            return None
        # Those committed with the job's row come first: that was the job's first transaction.
        activations = [] if row[-1] is None else _unpacked(json.loads(row[-1]))
        activations += [
            activation_from_row(activation)
            for activation in connection.execute(
                f"SELECT {ACTIVATION_COLUMNS} FROM activations WHERE job_id = ? ORDER BY rowid",
                (job_id,),
            )
        ]
        return stored_job_from_row(row[:-1], activations, self.codec.decode)

    # -- recovery ----------------------------------------------------------------------------

    def interrupted_jobs(self) -> list[tuple[str, float | None]]:
        if not self.path.exists():
            return []
        connection = self._read()
        try:
            rows = connection.execute(
                "SELECT job_id, owner_pid, owner_host, owner_started, lease_until FROM jobs "
                f"WHERE status NOT IN {TERMINAL_STATUSES} ORDER BY created_at"
            ).fetchall()
        finally:
            connection.close()
        found = []
        for job_id, pid, host, started, lease_until in rows:
            wait = self._owner_wait(ProcessIdentity(pid, host, started or ""), lease_until)
            if wait is not False:
                found.append((job_id, wait))
        return found

    def _owner_wait(self, owner: ProcessIdentity, lease_until: float | None) -> float | None | bool:
        """None: the owner is gone; seconds: wait for its lease; False: it is alive."""
        if owner == self.owner:
            return False  # this very process runs it
        if owner.host == self.owner.host:
            return False if process_is_alive(owner) else None
        left = (lease_until or 0.0) - time.time()
        return None if left <= 0 else left

    def claim(self, job_id: str, owner: ProcessIdentity) -> StoredJob | None:
        connection = connect(self.url, self.path, write=True)
        try:
            connection.execute("BEGIN IMMEDIATE")  # one claimer at a time, across processes
            try:
                row = connection.execute(
                    "SELECT status, owner_pid, owner_host, owner_started, lease_until FROM jobs "
                    "WHERE job_id = ?",
                    (job_id,),
                ).fetchone()
                if row is None or row[0] in TERMINAL_STATUSES:
                    connection.execute("ROLLBACK")
                    return None
                previous = ProcessIdentity(row[1], row[2], row[3] or "")
                if self._owner_wait(previous, row[4]) is not None:
                    connection.execute("ROLLBACK")
                    return None
                connection.execute(
                    "UPDATE jobs SET owner_pid = ?, owner_host = ?, owner_started = ?, "
                    "lease_until = ?, status = 'running' WHERE job_id = ?",
                    (owner.pid, owner.host, owner.started, time.time() + 30.0, job_id),
                )
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
            return self._load(connection, job_id)
        except sqlite3.Error as exc:
            raise JobStoreError(
                f"job store {self.url!r}: claiming job {job_id} failed: {exc}"
            ) from exc
        finally:
            connection.close()

    def prune(self, finished_before: float) -> int:
        connection = connect(self.url, self.path, write=True)
        try:
            connection.execute("BEGIN IMMEDIATE")
            ids = [
                row[0]
                for row in connection.execute(
                    # created_at: the range jobs_by_created reads (finished before, so
                    # created before)
                    f"SELECT job_id FROM jobs WHERE created_at < ? AND finished_at < ? "
                    f"AND status IN {TERMINAL_STATUSES}",
                    (finished_before, finished_before),
                )
            ]
            connection.executemany("DELETE FROM activations WHERE job_id = ?", [(i,) for i in ids])
            connection.executemany("DELETE FROM jobs WHERE job_id = ?", [(i,) for i in ids])
            connection.execute(
                "DELETE FROM flows WHERE flow_key NOT IN "
                "(SELECT flow_key FROM jobs WHERE flow_key IS NOT NULL)"
            )
            connection.execute("COMMIT")
            return len(ids)
        finally:
            connection.close()


def _unpacked(packed: list[list[Any]]) -> list[dict[str, Any]]:
    """Activations from a job row's ``first_activations`` (see sqlite_writer): each is
    its row's columns in ``ACTIVATION_COLUMNS`` order, ``consumed`` and ``effects`` parsed,
    its timestamps ticks (an int) or seconds (``TICKS_PER_SECOND``)."""
    activations = []
    for columns in packed:
        activation = dict(zip(_ACTIVATION_KEYS, columns, strict=True))
        for key in ("started_at", "finished_at"):
            if type(activation[key]) is int:  # int / float: the exact float again
                activation[key] /= TICKS_PER_SECOND
        activations.append(activation)
    return activations


_ACTIVATION_KEYS = [name.strip() for name in ACTIVATION_COLUMNS.split(",")]
