"""The writer thread a job store commits through: whatever queued up goes in one transaction.

Writes are taken in the order they were handed over and committed together, so a commit
never lands before one it depends on. Once a write arrives, the thread lets others join it
for ``GATHER_SECONDS`` (unless ``BATCH_LIMIT`` writes are waiting, or someone flushes), then
commits them all in one transaction; writes handed over meanwhile go into the next one.
Waking the thread for each write instead would cost more than the writes themselves: every
wake-up takes the GIL from the engine's threads. The thread also commits when the lease of
the jobs its process owns is due for renewal.

A new job's writes are held back until the job ends, for at most ``HOLD_SECONDS`` after it
was created: most jobs end by then, and a store writes such a job as one row, its outcome
and activations in it, instead of a row that later updates and activation rows besides.
Only the order of one job's writes matters (a commit never lands before its job or its
inputs' producers, all of the same job), and that order is kept. A flush or close writes
everything held.

A store's writer subclasses :class:`GroupedWriter` with its ``_commit``: one transaction for
the batch, renewing the lease when ``_next_lease`` has passed; a failed transaction is rolled
back and sets ``failure``, so what was committed before stays and the store takes no more
writes (the engine fails the jobs that depend on it).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from itertools import repeat, starmap
from typing import cast

from routilux_kernel.core.job_store import (
    ActivationCommit,
    JobStoreError,
    JobUpdate,
    NewJob,
    ProcessIdentity,
)
from routilux_kernel.core.lazy_logger import logger

#: Seconds a write waits for others to share its transaction (well inside MAX_COMMIT_DELAY).
GATHER_SECONDS = 0.02
#: This many waiting writes are committed at once, without waiting out the gathering time.
BATCH_LIMIT = 5000
#: Seconds after its creation that a running job's writes may be held back (see above); with
#: the gathering and the commit itself, well inside MAX_COMMIT_DELAY.
HOLD_SECONDS = 0.04

Write = NewJob | ActivationCommit | JobUpdate


#: The writes of a job held back until it ended, in order: its NewJob, its commits, its
#: JobUpdate. Handed to ``_commit`` as one item by writers that set ``takes_complete_jobs``
#: (they write such a job as one row); others get the writes one by one. A plain list (no
#: write is one), made and told apart at the cost of a list.
CompleteJob = list[Write]


def _release_time(job_writes: list[Write]) -> float:
    """When the held writes of a job (its NewJob first) go even if it has not ended."""
    return job_writes[0].created_at + HOLD_SECONDS  # type: ignore[union-attr]


class _FlushMark(threading.Event):
    """Queued by ``flush``: set once every write queued before it is committed."""


class GroupedWriter:
    """The writer thread of one store in one process; subclasses write a batch (``_commit``)."""

    #: ``_commit`` takes a :class:`CompleteJob` as one item of its batch.
    takes_complete_jobs = False

    def __init__(self, url: str, owner: ProcessIdentity, thread_name: str) -> None:
        self.url = url
        self.owner = owner
        # Engine threads append without a lock (deque appends are atomic); only this
        # thread takes from the front.
        self._pending: deque[Write | _FlushMark] = deque()
        self._flows: dict[str, str | None] = {}
        self._flow_keys: dict[str, str] = {}  # snapshot text -> its key in the flows table
        self._changed = threading.Condition(threading.Lock())
        self._closing = False
        self._flushing = 0  # callers of flush() waiting: commit without gathering
        self._idle = True  # the thread waits for a first write (hand_over must wake it)
        #: Writes of new, running jobs held back (only this thread), in the order the jobs
        #: came: job id -> its writes in order, its NewJob first.
        self._held: dict[str, CompleteJob] = {}
        self.failure: JobStoreError | None = None
        self._next_lease = 0.0
        self._thread = threading.Thread(target=self._loop, name=thread_name, daemon=True)
        self._thread.start()

    def hand_over_job(self, job: NewJob) -> None:
        """Queue a new job, its flow's definition first if this writer has not seen it."""
        if job.flow_snapshot not in self._flow_keys:
            self._add_flow(job.flow_snapshot)
        self.hand_over(job)

    def hand_over(self, write: Write) -> None:
        if self.failure is not None or self._closing:
            if self.failure is not None:
                raise self.failure
            raise JobStoreError(f"job store {self.url!r} is closed")
        pending = self._pending
        pending.append(write)
        # The thread, if idle, set _idle under the lock before it looked at the queue: it
        # either saw this write already or is woken here.
        if self._idle or len(pending) == BATCH_LIMIT:
            with self._changed:
                self._idle = False
                self._changed.notify_all()

    def _add_flow(self, snapshot: str | None) -> None:
        if snapshot is None:
            return
        with self._changed:  # before the job is queued, so the flow lands with it or before
            if snapshot not in self._flow_keys:
                key = hashlib.sha256(snapshot.encode()).hexdigest()[:24]
                self._flow_keys[snapshot] = key
                self._flows[key] = snapshot

    def flush(self, timeout: float | None = None) -> None:
        mark = _FlushMark()
        with self._changed:
            # Counted before it is queued: the thread looks for marks in what it takes only
            # while someone flushes (it reads both under this lock).
            self._flushing += 1
            self._pending.append(mark)  # done once the writes handed over before it are
            self._idle = False
            self._changed.notify_all()
        try:
            if not mark.wait(timeout):
                raise JobStoreError(
                    f"job store {self.url!r}: writes still pending after {timeout}s"
                )
        finally:
            with self._changed:
                self._flushing -= 1
        if self.failure is not None:
            raise self.failure

    def close(self) -> None:
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._thread.join()
        self._closed()

    def _loop(self) -> None:
        pending = self._pending
        while True:
            with self._changed:
                self._idle = not pending
                self._changed.wait_for(self._has_work, self._lease_wait())
                if pending and not self._in_a_hurry():
                    self._idle = False
                    self._changed.wait_for(self._in_a_hurry, GATHER_SECONDS)
                self._idle = False
                # Counted before the flows are taken: a job counted here had its flow
                # added (under this lock) before it was queued, so the flow is taken too.
                count = len(pending)
                flows, self._flows = self._flows, {}
                closing = self._closing
                flushing = self._flushing
            batch = list(starmap(pending.popleft, repeat((), count)))  # a loop in C
            marks = [w for w in batch if type(w) is _FlushMark] if flushing else []
            taken = [w for w in batch if type(w) is not _FlushMark] if marks else batch
            writes = self._hold_back(cast("list[Write]", taken), everything=bool(marks) or closing)
            if writes or flows or time.time() >= self._next_lease:
                try:
                    self._commit(writes, flows)
                except Exception as exc:  # a bug, not a store fault: still nobody may hang
                    logger.opt(exception=True).error("job store writer failed")
                    with self._changed:
                        self.failure = JobStoreError(
                            f"job store {self.url!r}: the writer failed: {type(exc).__name__}: "
                            f"{exc}"
                        )
            for mark in marks:
                mark.set()
            # Not kept alive (nor traversed by the collector) until the next batch
            del batch, taken, writes
            if closing and not pending:
                return

    def _hold_back(self, writes: list[Write], everything: bool) -> list[Write]:
        """The writes to commit now: ``writes`` less those of new jobs still running and
        young, plus held writes whose job ended or whose time is up (all, for a flush)."""
        held = self._held
        held_writes = held.get
        out: list[Write] = []
        keep = out.append
        complete_jobs = self.takes_complete_jobs
        for write in writes:
            job_id = write.job_id
            job_writes = held_writes(job_id)
            if job_writes is None:
                if type(write) is NewJob:  # (a flush still gathers a job that ends with it)
                    held[job_id] = [write]
                else:
                    keep(write)
            elif type(write) is JobUpdate:  # the job ended: its writes go together now
                job_writes.append(write)
                del held[job_id]
                if complete_jobs:
                    keep(job_writes)  # type: ignore[arg-type]
                else:
                    out.extend(job_writes)
            else:
                job_writes.append(write)
        now = time.time()
        while held:  # in the order the jobs came, so the first one is due first
            job_id, job_writes = next(iter(held.items()))
            if not everything and _release_time(job_writes) > now:
                break
            del held[job_id]
            out.extend(job_writes)
        return out

    def _has_work(self) -> bool:
        return bool(self._pending) or self._closing

    def _in_a_hurry(self) -> bool:
        return self._closing or self._flushing > 0 or len(self._pending) >= BATCH_LIMIT

    def _lease_wait(self) -> float:
        """Seconds until the thread must commit with no new write: the lease, or held writes."""
        wake = self._next_lease
        if self._held:
            wake = min(wake, _release_time(next(iter(self._held.values()))))
        return max(0.0, wake - time.time())

    def _commit(self, batch: list[Write], flows: dict[str, str | None]) -> None:
        """Write ``batch`` (and the flow definitions not written yet) in one transaction."""
        raise NotImplementedError

    def _closed(self) -> None:
        """The thread has ended: release what only it used."""


class GroupedWrites:
    """The write side of a job store that commits through a :class:`GroupedWriter`.

    Mixed in before ``JobStore``: the store keeps ``_writer`` (None until the first write)
    and implements ``_writer_for`` (make the writer, once, after preparing its storage).
    """

    _writer: GroupedWriter | None

    def _writer_for(self) -> GroupedWriter:
        raise NotImplementedError

    def _writes_to(self, writer: GroupedWriter | None) -> None:
        """From now on the engine's writes go straight to ``writer`` (its bound methods
        shadow the three below: one call less per write); None: through them again.
        ``_writer_for`` calls it with the writer it made, ``close`` with None."""
        methods = vars(self)
        if writer is None:
            for name in _SHADOWED:
                methods.pop(name, None)
            return
        for name, target in zip(_SHADOWED, _TARGETS, strict=True):
            if getattr(type(self), name) is getattr(GroupedWrites, name):  # not overridden
                methods[name] = getattr(writer, target)

    def open_for_writing(self) -> None:
        """Prepare the storage and start the writer (otherwise done by the first write)."""
        self._writer_for()

    def job_created(self, job: NewJob) -> None:
        (self._writer or self._writer_for()).hand_over_job(job)

    def activation_committed(self, commit: ActivationCommit) -> None:
        (self._writer or self._writer_for()).hand_over(commit)

    def job_updated(self, update: JobUpdate) -> None:
        (self._writer or self._writer_for()).hand_over(update)

    def failure(self) -> BaseException | None:
        writer = self._writer
        return writer.failure if writer is not None else None

    def flush(self, timeout: float | None = None) -> None:
        if self._writer is not None:
            self._writer.flush(timeout)


#: The write methods ``_writes_to`` shadows, and the writer's methods behind each.
_SHADOWED = ("job_created", "activation_committed", "job_updated")
_TARGETS = ("hand_over_job", "hand_over", "hand_over")
