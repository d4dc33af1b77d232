"""Grouped writes to a SQLite job store: a batch of writes as one ``BEGIN IMMEDIATE``
transaction (the writer thread itself is ``grouped_writer.py``'s).

A failed transaction (disk full, I/O error) is rolled back: what was committed before stays,
and the store takes no more writes, so the engine fails the jobs that depend on it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from functools import cache
from itertools import chain
from operator import itemgetter
from typing import Any

from routilux_kernel.core.job_store import (
    ActivationCommit,
    JobStoreError,
    JobUpdate,
    NewJob,
    ProcessIdentity,
)
from routilux_kernel.core.json_text import json_string, lenient_json
from routilux_kernel.core.lazy_logger import logger
from routilux_kernel.stores.grouped_writer import CompleteJob, GroupedWriter, Write
from routilux_kernel.stores.sqlite_schema import TICKS_PER_SECOND

#: Seconds an owner's claim on its running jobs lasts without renewal (other hosts wait it out).
LEASE_SECONDS = 30.0


class SqliteWriter(GroupedWriter):
    """The writer thread of one SQLite store connection."""

    takes_complete_jobs = True

    def __init__(self, url: str, connection: sqlite3.Connection, owner: ProcessIdentity) -> None:
        self._connection = connection
        super().__init__(url, owner, "routilux-store-writer")

    def _closed(self) -> None:
        self._connection.close()

    def _commit(self, batch: list[Write], flows: dict[str, str | None]) -> None:
        if self.failure is not None:
            return  # dropped: the engine was told and fails the jobs concerned
        now = time.time()
        lease_until = now + LEASE_SECONDS
        # Job rows of this batch, in the order their jobs came: a tuple for a job that came
        # complete (most short jobs: one row write with its outcome), a list while its
        # outcome may still be filled in.
        new_jobs: dict[str, list[Any] | tuple[Any, ...]] = {}
        activation_rows: list[tuple[Any, ...]] = []
        update_rows: list[tuple[Any, ...]] = []
        # Jobs whose id may already be in the file (a resumed JobState): their old
        # activation rows go. A fresh id cannot have any, so most batches delete nothing.
        reused: list[tuple[str]] = []
        flow_keys = self._flow_keys
        owner = self.owner
        for write in batch:
            if type(write) is list:  # a CompleteJob (most jobs): one row, outcome and activations
                job = write[0]
                assert type(job) is NewJob
                new_jobs[job.job_id] = _complete_row(job, write, flow_keys, lease_until)
                if not job.fresh:
                    reused.append((job.job_id,))
                continue
            if type(write) is ActivationCommit:
                row = new_jobs.get(write.job_id)
                if type(row) is list:  # its job's row is written here too: it goes in that row
                    packed = row[_PACKED_COLUMN]
                    if packed is None:
                        row[_PACKED_COLUMN] = [_packed(write)]
                    else:
                        packed.append(_packed(write))
                    continue
                activation_rows.append(write.row())
            elif type(write) is NewJob:
                new_jobs[write.job_id] = _job_row(write, flow_keys, lease_until)
                if not write.fresh:
                    reused.append((write.job_id,))
            else:
                assert type(write) is JobUpdate
                outcome = (
                    write.status,
                    write.started_at,
                    write.finished_at,
                    write.error,
                    write.traceback,
                    write.final_state,
                )
                row = new_jobs.get(write.job_id)
                if type(row) is list:
                    row[_OUTCOME_COLUMNS] = outcome
                else:  # written before, or complete in this batch (an update of it comes after)
                    update_rows.append((*outcome, write.job_id))
        connection = self._connection
        try:
            connection.execute("BEGIN IMMEDIATE")
            if flows:
                connection.executemany(
                    "INSERT OR IGNORE INTO flows (flow_key, snapshot) VALUES (?, ?)",
                    flows.items(),
                )
            if reused:
                _in_chunks(
                    connection,
                    "DELETE FROM activations WHERE job_id IN ",
                    1,
                    reused,
                    tuple_list=True,
                )
            if new_jobs:
                rows = list(new_jobs.values())
                for row in rows:
                    if type(row) is list:
                        packed = row[_PACKED_COLUMN]
                        if packed is not None:
                            row[_PACKED_COLUMN] = "[" + ",".join(packed) + "]"
                _in_chunks(connection, _INSERT_JOBS, 17, rows, _JOB_NULLABLE, _JOB_SAME)
            if activation_rows:
                _in_chunks(connection, _INSERT_ACTIVATIONS, 11, activation_rows, (7, 8), _ACT_SAME)
            if update_rows:
                connection.executemany(
                    "UPDATE jobs SET status = ?, started_at = ?, finished_at = ?, error = ?, "
                    "traceback = ?, final_state = ? WHERE job_id = ?",
                    update_rows,
                )
            if now >= self._next_lease:
                connection.execute(
                    "UPDATE jobs SET lease_until = ? WHERE owner_pid = ? AND owner_host = ? "
                    "AND owner_started = ? AND status IN ('running', 'pending')",
                    (now + LEASE_SECONDS, owner.pid, owner.host, owner.started),
                )
                self._next_lease = now + LEASE_SECONDS / 3
            connection.execute("COMMIT")
        except sqlite3.Error as exc:
            try:
                connection.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            failure = JobStoreError(
                f"job store {self.url!r}: a write failed ({type(exc).__name__}: {exc}); what "
                "was committed before is kept, the jobs running in this process fail and "
                "'routilux jobs resume --interrupted' finishes them once the fault is fixed"
            )
            logger.error("{}", failure)
            with self._changed:
                self.failure = failure


_INSERT_JOBS = (
    "INSERT OR REPLACE INTO jobs (job_id, flow_id, flow_key, flow_source, created_at, "
    "owner_pid, owner_host, owner_started, lease_until, entry_items, status, started_at, "
    "finished_at, error, traceback, final_state, first_activations)"
)
#: The columns of a job row that are often NULL: flow_key, flow_source, the outcome's
#: started_at ... final_state (a job still running), first_activations.
_JOB_NULLABLE = (2, 3, 11, 12, 13, 14, 15, 16)
#: The columns of a job row that often hold one value in a whole batch: flow_id, flow_key,
#: flow_source, owner_pid, owner_host, owner_started, lease_until, status.
_JOB_SAME = (1, 2, 3, 5, 6, 7, 8, 10)
#: The columns of an activation row that often hold one value in a whole batch: job_id,
#: routine_id, outcome, attempt (error and traceback are nullable: 7, 8).
_ACT_SAME = (0, 2, 5, 6)
_INSERT_ACTIVATIONS = (
    "INSERT OR REPLACE INTO activations (job_id, number, routine_id, started_at, "
    "finished_at, outcome, attempt, error, traceback, consumed, effects)"
)
#: Rows per statement at most; smaller chunks are powers of two, so few statements are
#: prepared (and cached) per table.
_CHUNK = 256


def _in_chunks(
    connection: sqlite3.Connection,
    head: str,
    width: int,
    rows: list[Any],
    nullable: tuple[int, ...] = (),
    same: tuple[int, ...] = (),
    tuple_list: bool = False,
) -> None:
    """Run ``head`` + many rows per statement. sqlite3 lets go of the GIL around each
    statement step: with ``executemany`` that is once per row, and every time the engine's
    threads fight to take it back; here it is once per chunk of rows.

    Binding costs, so a chunk binds what it must only. A column of ``nullable`` that is None
    in every row of a chunk is written as a literal NULL: sqlite3 binds a None only after
    looking for an adapter for it, which raises and clears an AttributeError each time (five
    times the cost of binding a str), and most rows have several (no error, no traceback, no
    source file...). Only columns whose values are never falsy otherwise may be named (texts,
    timestamps). A column of ``same`` that holds one value in every row of a chunk (the jobs'
    owner, lease, flow, status: most batches) is bound once (see ``_statement``)."""
    start = 0
    while start < len(rows):
        size = _CHUNK
        while size > len(rows) - start:
            size //= 2
        chunk = rows[start : start + size]
        start += size
        if tuple_list:  # "x IN (?,?,...)": one list of values
            connection.execute(head + "(" + ",".join("?" * size) + ")", [r[0] for r in chunk])
            continue
        empty = tuple([i for i in nullable if not any(map(_COLUMN[i], chunk))])
        shared = tuple(
            [i for i in same if i not in empty and len(set(map(_COLUMN[i], chunk))) == 1]
        )
        sql, pick = _statement(head, width, size, empty, shared)
        values = [chunk[0][i] for i in shared]
        values += chain.from_iterable(chunk if pick is None else map(pick, chunk))
        connection.execute(sql, values)


#: itemgetter(i) for each column index a row may have.
_COLUMN = [itemgetter(index) for index in range(32)]


@cache
def _statement(
    head: str, width: int, size: int, empty: tuple[int, ...], shared: tuple[int, ...]
) -> tuple[str, Callable[[Any], Any] | None]:
    """``head`` (an INSERT up to its VALUES) with ``size`` rows of ``width`` columns: the
    columns ``empty`` as NULL, those of ``shared`` as parameters ?1, ?2 ... bound once; and
    what picks the other columns' values from a row, in order (None: all of them).

    With shared columns the rows are a VALUES list of plain ``?`` that a SELECT around it
    completes: numbered parameters in every row instead make SQLite's first preparation of
    the statement (once per connection) several times slower, as it looks each one up."""
    bound = [i for i in range(width) if i not in empty and i not in shared]
    if not shared:
        one = "(" + ",".join("NULL" if i in empty else "?" for i in range(width)) + ")"
        return head + " VALUES " + ",".join([one] * size), (None if not empty else _picker(bound))
    columns = []
    for i in range(width):
        if i in empty:
            columns.append("NULL")
        elif i in shared:
            columns.append(f"?{shared.index(i) + 1}")
        else:  # the VALUES list's columns are named column1, column2 ...
            columns.append(f"column{bound.index(i) + 1}")
    one = "(" + ",".join("?" * len(bound)) + ")"
    values = ",".join([one] * size)
    return f"{head} SELECT {','.join(columns)} FROM (VALUES {values})", _picker(bound)


def _picker(indexes: list[int]) -> Callable[[Any], Any]:
    """What takes the values of columns ``indexes`` of a row, as a tuple."""
    if len(indexes) == 1:
        index = indexes[0]
        return lambda row: (row[index],)
    return itemgetter(*indexes)


#: Where a job row (``_job_row``) holds its outcome: status, started_at, ... final_state.
_OUTCOME_COLUMNS = slice(10, 16)
#: Where a job row holds the activations committed with it (``first_activations``).
_PACKED_COLUMN = 16


def _job_row(job: NewJob, flow_keys: dict[str, str], lease_until: float) -> list[Any]:
    entries = job.entry_items
    if len(entries) == 1:  # most jobs: one entry routine
        n, rid, slot, data = entries[0]
        items = f"[[{n},{json_string(rid)},{json_string(slot)},{data}]]"
    else:
        items = _items_text(entries)
    return [
        job.job_id,
        job.flow_id,
        None if job.flow_snapshot is None else flow_keys.get(job.flow_snapshot),
        job.flow_source,
        job.created_at,
        job.owner.pid,
        job.owner.host,
        job.owner.started,
        lease_until,
        items,
        job.status,
        None,
        None,
        None,
        None,
        None,
        None,
    ]


def _complete_row(
    job: NewJob,
    writes: CompleteJob,
    flow_keys: dict[str, str],
    lease_until: float,
) -> tuple[Any, ...]:
    """The row of a job that ended before it was written: ``writes`` is its NewJob, its
    commits and its JobUpdate (the same row ``_job_row`` and the outcome make, in one go)."""
    update: JobUpdate = writes[-1]  # type: ignore[assignment]
    entries = job.entry_items
    if len(entries) == 1:
        n, rid, slot, data = entries[0]
        items = f"[[{n},{json_string(rid)},{json_string(slot)},{data}]]"
    else:
        items = _items_text(entries)
    if len(writes) == 3:
        packed: str | None = f"[{_packed(writes[1])}]"  # type: ignore[arg-type]
    elif len(writes) > 2:
        packed = "[" + ",".join([_packed(commit) for commit in writes[1:-1]]) + "]"  # type: ignore[arg-type]
    else:
        packed = None
    snapshot = job.flow_snapshot
    owner = job.owner
    return (
        job.job_id,
        job.flow_id,
        None if snapshot is None else flow_keys.get(snapshot),
        job.flow_source,
        job.created_at,
        owner.pid,
        owner.host,
        owner.started,
        lease_until,
        items,
        update.status,
        update.started_at,
        update.finished_at,
        update.error,
        update.traceback,
        update.final_state,
        packed,
    )


def _items_text(entries: tuple[tuple[int, str, str, str], ...]) -> str:
    """A job's entry items as the JSON text of its ``entry_items`` column (data spliced in)."""
    return (
        "["
        + ",".join(
            [
                f"[{n},{json_string(rid)},{json_string(slot)},{data}]"
                for n, rid, slot, data in entries
            ]
        )
        + "]"
    )


def _int_list(numbers: tuple[int, ...]) -> str:
    """A tuple of ints as a JSON array."""
    if len(numbers) == 1:
        return f"[{numbers[0]}]"
    return "[" + ",".join(map(str, numbers)) + "]"


def _packed(commit: ActivationCommit) -> str:
    """An activation as an element of ``first_activations``: the columns of its row, in
    ``ACTIVATION_COLUMNS`` order, as one JSON array (its effects spliced in as they are),
    its timestamps as ticks where exact (``TICKS_PER_SECOND``)."""
    started = commit.started_at * TICKS_PER_SECOND
    finished = commit.finished_at * TICKS_PER_SECOND
    if commit.error is None and started.is_integer() and finished.is_integer():
        # The common case, by hand
        consumed = commit.consumed
        return (
            f"[{commit.number},{json_string(commit.routine_id)},{int(started)},"
            f"{int(finished)},{json_string(commit.outcome)},{commit.attempt},null,null,"
            f"{f'[{consumed[0]}]' if len(consumed) == 1 else _int_list(consumed)},"
            f"{commit.effects}]"
        )
    # Timestamps as floats (a float repr is JSON, and never NaN or inf for a timestamp)
    head = lenient_json(commit.row()[1:9])  # number ... traceback; consumed is JSON already
    return f"{head[:-1]},{_int_list(commit.consumed)},{commit.effects}]"
