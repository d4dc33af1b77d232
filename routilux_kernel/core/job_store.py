"""The job-store contract: where jobs, their activations and checkpoints are kept.

A store is chosen by URL (``memory``, ``sqlite:///runs.db``, ...); the scheme names a
factory registered through the ``register_job_stores`` hook. The engine talks only to
:class:`JobStore`. Writes are handed over and may be grouped by the store (each lands at
most ``MAX_COMMIT_DELAY`` seconds after it was handed over); reads see what was committed.

Checkpoints follow one rule: an activation's consumed inputs, the items it routed into
slots and its state updates are one :class:`ActivationCommit`, committed in one
transaction, and a commit is handed over only after the commits of the activations that
produced its inputs. Recovery replays committed activations only.
"""

from __future__ import annotations

import json
import os
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from routilux_kernel.core.errors import RoutiluxError
from routilux_kernel.core.value_codecs import ValueCodec

#: A grouped write lands at most this many seconds after it was handed to the store.
MAX_COMMIT_DELAY = 0.1
#: ``jobs list`` shows at most this many jobs unless told otherwise.
DEFAULT_LIST_LIMIT = 1000
#: Statuses after which a job is never run again by recovery.
TERMINAL_STATUSES = ("completed", "failed", "cancelled")


class JobStoreError(RoutiluxError):
    """A store cannot be opened, read or written; the message names the store and the fault."""


@dataclass(frozen=True)
class ProcessIdentity:
    """Who owns a running job: a process on a host, told apart from a later one with its pid."""

    pid: int
    host: str
    started: str  # the process start time as the OS reports it ("" when unknown)

    @classmethod
    def current(cls) -> ProcessIdentity:
        return cls(os.getpid(), socket.gethostname(), process_start_time(os.getpid()))


def process_start_time(pid: int) -> str:
    """The start time of process ``pid`` (clock ticks since boot on Linux), "" if unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return ""
    # Field 22; the command name (field 2) may hold spaces, so count after its ')'.
    return text.rpartition(")")[2].split()[19]


def process_is_alive(identity: ProcessIdentity) -> bool:
    """True if the process ``identity`` names (on this host) still runs."""
    try:
        os.kill(identity.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by someone else
    if identity.started and process_start_time(identity.pid) not in ("", identity.started):
        return False  # the pid was reused by a later process
    return True


@dataclass(slots=True)  # one per job or activation: no __dict__ each
class NewJob:
    """A job as it is created: stored before any of its activations."""

    job_id: str
    flow_id: str
    flow_snapshot: str | None  # the flow definition as JSON text (Flow.to_dict)
    flow_source: str | None  # the flow file it was read from, if any
    #: (item, routine_id, slot, encoded data) each. Tuples of plain values, like the other
    #: fields of a write: the collector stops tracking them while the write waits.
    entry_items: tuple[tuple[int, str, str, str], ...]
    created_at: float
    owner: ProcessIdentity
    status: str = "running"
    #: The id was made for this job just now: no older job of that id can be stored, so a
    #: store may skip replacing one. False for a resumed JobState (its id is reused).
    fresh: bool = False


@dataclass(slots=True)
class ActivationCommit:
    """One finished activation: its history row and its checkpoint, committed together.

    ``effects`` is JSON text of a list of operations in the order they were made:
    ``["item", n, routine_id, slot, data]`` (routed into a slot), ``["state", routine_id,
    updates]``, ``["set", key, value]``, ``["delete", key]``, ``["clear"]``,
    ``["append", value]``, ``["skip", routine_id]`` (SKIP took the routine out of the job);
    values are encoded by the store's codec.
    """

    job_id: str
    number: int
    routine_id: str
    started_at: float
    finished_at: float
    outcome: str  # as in the job's execution history: "completed", "failed" or "skipped"
    attempt: int
    consumed: tuple[int, ...]  # the items it took (a tuple: see NewJob.entry_items)
    effects: str
    error: str | None = None
    traceback: str | None = None

    def row(self) -> tuple[Any, ...]:
        """The commit as a row of an activations table: its job id, then the columns of
        :data:`ACTIVATION_COLUMNS` in order, ``consumed`` as JSON text."""
        consumed = self.consumed
        return (
            self.job_id,
            self.number,
            self.routine_id,
            self.started_at,
            self.finished_at,
            self.outcome,
            self.attempt,
            self.error,
            self.traceback,
            f"[{consumed[0]}]" if len(consumed) == 1 else json.dumps(consumed),
            self.effects,
        )


#: Keys of ``JobState.to_dict`` a stored final state leaves out while they hold these values
#: (a job that ended cleanly); a reader puts them back (``jobs show``).
FINAL_STATE_DEFAULTS: dict[str, Any] = {
    "error": None,
    "error_routine_id": None,
    "errors": [],
    "unconsumed": {},
    "skipped_routines": [],
    "history": [],
}


@dataclass(slots=True)
class JobUpdate:
    """A job's status changed; ``final_state`` is ``JobState.to_dict`` as JSON once it ended,
    less its timestamps (the fields here), the keys of
    :data:`FINAL_STATE_DEFAULTS` that hold their default and, when the job had no error,
    its ``execution_history`` (its activation rows are it)."""

    job_id: str
    status: str
    started_at: float | None
    finished_at: float | None
    error: str | None
    traceback: str | None
    final_state: str | None


@dataclass
class StoredJob:
    """Everything a store keeps of one job."""

    job_id: str
    flow_id: str
    flow_snapshot: str | None
    flow_source: str | None
    status: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    error: str | None
    traceback: str | None
    owner: ProcessIdentity | None
    lease_until: float | None
    entry_items: list[tuple[int, str, str, Any]]  # decoded data
    final_state: dict[str, Any] | None
    activations: list[dict[str, Any]] = field(default_factory=list)  # commit order, decoded


#: The job columns a SQL store reads for :func:`stored_job_from_row`, in this order (``j`` is
#: the jobs table, ``f`` the flows table joined on ``flow_key``).
JOB_COLUMNS = (
    "j.job_id, j.flow_id, f.snapshot, j.flow_source, j.status, j.created_at, "
    "j.started_at, j.finished_at, j.error, j.traceback, j.owner_pid, j.owner_host, "
    "j.owner_started, j.lease_until, j.entry_items, j.final_state"
)
#: The activation columns a SQL store reads for :func:`activation_from_row`, in this order.
ACTIVATION_COLUMNS = (
    "number, routine_id, started_at, finished_at, outcome, attempt, error, "
    "traceback, consumed, effects"
)


def activation_from_row(row: Sequence[Any]) -> dict[str, Any]:
    """One stored activation, from a row of :data:`ACTIVATION_COLUMNS`."""
    number, routine_id, started, finished, outcome, attempt, error, trace, consumed, effects = row
    return {
        "number": number,
        "routine_id": routine_id,
        "started_at": started,
        "finished_at": finished,
        "outcome": outcome,
        "attempt": attempt,
        "error": error,
        "traceback": trace,
        "consumed": json.loads(consumed),
        "effects": json.loads(effects),
    }


def stored_job_from_row(
    row: Sequence[Any], activations: list[dict[str, Any]], decode: Callable[[str], Any]
) -> StoredJob:
    """A stored job, from a row of :data:`JOB_COLUMNS`; ``decode`` reads entry data."""
    owner = None if row[10] is None else ProcessIdentity(row[10], row[11], row[12] or "")
    return StoredJob(
        job_id=row[0],
        flow_id=row[1],
        flow_snapshot=row[2],
        flow_source=row[3],
        status=row[4],
        created_at=row[5],
        started_at=row[6],
        finished_at=row[7],
        error=row[8],
        traceback=row[9],
        owner=owner,
        lease_until=row[13],
        entry_items=[(n, rid, slot, decode(data)) for n, rid, slot, data in json.loads(row[14])],
        final_state=None if row[15] is None else json.loads(row[15]),
        activations=activations,
    )


@dataclass(frozen=True)
class JobQuery:
    """Which stored jobs to list: filters, all optional, and one page of the newest first.

    ``created_after``/``created_before`` bound ``created_at`` (epoch seconds, the first
    inclusive, the second exclusive); ``offset`` skips that many matches.
    """

    status: str | None = None
    flow_id: str | None = None
    created_after: float | None = None
    created_before: float | None = None
    limit: int = 50
    offset: int = 0


@dataclass
class JobPage:
    """One page of job summaries (``list_jobs`` rows) and how many jobs match in all."""

    jobs: list[dict[str, Any]]
    total: int


class JobStore(ABC):
    """What the engine needs from a store. Built-ins: ``memory`` and ``sqlite:///``."""

    #: False for a store that keeps nothing: the engine then records no checkpoints.
    durable: bool = True

    def __init__(self, url: str, codec: ValueCodec) -> None:
        self.url = url
        self.codec = codec

    # -- writes (the engine's side) --------------------------------------------------------

    @abstractmethod
    def job_created(self, job: NewJob) -> None:
        """Store a new job (owned by ``job.owner``); replaces an older job of the same id."""

    @abstractmethod
    def activation_committed(self, commit: ActivationCommit) -> None:
        """Store a finished activation and its checkpoint, all or nothing."""

    @abstractmethod
    def job_updated(self, update: JobUpdate) -> None:
        """Store a status change of a job."""

    def failure(self) -> BaseException | None:
        """The error of a write that failed (the store then takes no more), else None."""
        return None

    def flush(self, timeout: float | None = None) -> None:
        """Wait until everything handed over is committed; raises the store's failure."""
        return None

    def close(self) -> None:
        """Flush and release the store's resources."""
        return None

    # -- reads and recovery (the CLI's side) -----------------------------------------------

    @abstractmethod
    def list_jobs(
        self,
        status: str | None = None,
        flow_id: str | None = None,
        limit: int = DEFAULT_LIST_LIMIT,
    ) -> list[dict[str, Any]]:
        """Job summaries, newest first."""

    def query_jobs(self, query: JobQuery) -> JobPage:
        """A page of job summaries matching ``query``, newest first, with the total count.

        This default filters ``list_jobs`` in memory; a store that keeps many jobs answers
        it with indexed queries instead.
        """
        matching = [
            job
            for job in self.list_jobs(query.status, query.flow_id, limit=2**62)
            if (query.created_after is None or job["created_at"] >= query.created_after)
            and (query.created_before is None or job["created_at"] < query.created_before)
        ]
        return JobPage(matching[query.offset : query.offset + query.limit], len(matching))

    def list_flows(self) -> list[dict[str, Any]]:
        """Every flow that has a stored job: ``flow_id``, ``jobs`` (count), ``last_created_at``
        and ``flow`` (the newest stored definition as a dict, or None), by flow id."""
        flows: dict[str, dict[str, Any]] = {}
        for job in self.list_jobs(limit=2**62):  # newest first: the first seen is the newest
            entry = flows.get(job["flow_id"])
            if entry is None:
                stored = self.load_job(job["job_id"])
                snapshot = None if stored is None else stored.flow_snapshot
                flows[job["flow_id"]] = {
                    "flow_id": job["flow_id"],
                    "jobs": 1,
                    "last_created_at": job["created_at"],
                    "flow": None if snapshot is None else json.loads(snapshot),
                }
            else:
                entry["jobs"] += 1
        return [flows[name] for name in sorted(flows)]

    @abstractmethod
    def load_job(self, job_id: str) -> StoredJob | None:
        """One job with its activations, or None."""

    @abstractmethod
    def interrupted_jobs(self) -> list[tuple[str, float | None]]:
        """Unfinished jobs owned by no live process: ``(job_id, wait)``, ``wait`` being the
        seconds until the owner's lease runs out (None: claimable now)."""

    @abstractmethod
    def claim(self, job_id: str, owner: ProcessIdentity) -> StoredJob | None:
        """Take an unfinished job whose owner is gone, atomically; None if it cannot be taken."""

    @abstractmethod
    def prune(self, finished_before: float) -> int:
        """Delete finished jobs that ended before ``finished_before``; returns how many."""
