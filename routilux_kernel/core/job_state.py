"""JobState: everything one job owns: status, routine states, shared data, history."""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections import deque
from enum import StrEnum
from typing import Any

from routilux_kernel.core.context import current_activation
from routilux_kernel.core.effect_recording import recorder_for
from routilux_kernel.core.errors import ErrorText, RoutiluxError, exception_text
from routilux_kernel.core.execution_record import ExecutionRecord
from routilux_kernel.core.json_text import lenient_chunks, lenient_json

#: How many history entries a job keeps (oldest dropped first); also the bound of the
#: per-activation ``execution_history``.
HISTORY_LIMIT = 1000

# Job ids: a random per-process prefix plus a counter ("3f9c0a1b22d4-17"). One urandom
# call per job would be a system call that hands the GIL away on every exec.
_id_prefix = os.urandom(6).hex()
_id_counter = itertools.count(1)


def _renew_id_prefix() -> None:
    global _id_prefix, _id_counter
    _id_prefix = os.urandom(6).hex()
    _id_counter = itertools.count(1)


os.register_at_fork(after_in_child=_renew_id_prefix)


def new_job_id() -> str:
    """A process-unique, unguessable-enough id (random prefix + counter)."""
    return f"{_id_prefix}-{next(_id_counter)}"


def check_state_update(routine_id: str, updates: object) -> None:
    """The argument check of ``update_routine_state``, shared with the remote job-state view."""
    if not isinstance(updates, dict):
        raise TypeError(
            f"update_routine_state({routine_id!r}, ...) takes a dict, got {type(updates).__name__}"
        )


class ExecutionStatus(StrEnum):
    """Status of a job; compares and prints as its lower-case name."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset(
    {ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED}
)


class JobState:
    """The state of one job of a flow. Every method is thread-safe.

    Routine logic receives it as its third argument. ``shared_data`` (a dict) and
    ``shared_log`` (a list) are job-wide; routine states are dicts merged by
    :meth:`update_routine_state`.
    """

    def __init__(self, flow_id: str, job_id: str | None = None) -> None:
        self.job_id: str = job_id or new_job_id()
        self.flow_id: str = flow_id
        self.status: ExecutionStatus = ExecutionStatus.PENDING
        self._exception: BaseException | None = None
        self._error_text: ErrorText | None = None
        #: Routine id whose failure ended the job, when one did.
        self.error_routine_id: str | None = None
        self.created_at: float = time.time()
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.shared_data: dict[str, Any] = {}
        self.shared_log: list[Any] = []
        #: Errors recorded without ending the job (CONTINUE, SKIP, exhausted retries).
        self.errors: list[dict[str, Any]] = []
        #: Data still queued in slots when the job ended: {routine_id: {slot: [item, ...]}}.
        self.unconsumed: dict[str, dict[str, list[dict[str, Any]]]] = {}
        #: Routines taken out of this job by the SKIP strategy.
        self.skipped_routines: set[str] = set()
        self.history: deque[tuple[float, str, str, Any]] = deque(maxlen=HISTORY_LIMIT)
        # One ExecutionRecord per finished activation. A list trimmed in steps, not a
        # deque(maxlen): an empty deque costs ~600 bytes, paid by every retained job.
        self._executions: list[ExecutionRecord] = []
        self._updated_at: float = self.created_at
        # Set by the engine while a run owns the job: what an emit with an explicit
        # ``job_state=`` routes through, and (weakly) the flow that names its routines.
        self._live_run: Any = None
        self._flow: Any = None
        self._routine_states: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        # Held from creation until the job ends; waiters pass through it once released.
        # (Cheaper to create than a threading.Event, and a job is created per exec.)
        self._done = threading.Lock()
        self._done.acquire()
        self._finished = False
        self._claimed = False  # a run owns it (from exec until it is marked done)
        self._cancel_requested = False

    # -- routine state -------------------------------------------------------------------

    @property
    def current_routine_id(self) -> str | None:
        """Id of the routine whose logic is running in this thread for this job, else None."""
        ctx = current_activation.get()
        if ctx is not None and ctx.job_state is self:
            return ctx.routine_id
        return None

    def get_routine_state(self, routine_id: str, default: Any = None) -> Any:
        """A copy of the routine's state dict, or ``default`` if it has none yet."""
        with self._lock:
            state = self._routine_states.get(routine_id)
            return dict(state) if state is not None else default

    def update_routine_state(self, routine_id: str, updates: dict[str, Any]) -> None:
        """Merge ``updates`` into the routine's state (keys not named are kept)."""
        check_state_update(routine_id, updates)
        recorder = recorder_for(self)  # a durable store checkpoints it (encodes, may refuse)
        if recorder is not None:
            recorder.record("state", routine_id, updates)
        with self._lock:
            self._routine_states.setdefault(routine_id, {}).update(updates)
        self._updated_at = time.time()

    @property
    def routine_states(self) -> dict[str, dict[str, Any]]:
        """A copy of every routine's state."""
        with self._lock:
            return {key: dict(value) for key, value in self._routine_states.items()}

    # -- shared data (the original routilux's accessors; shared_data is a plain dict too) --

    def update_shared_data(self, key: str, value: Any) -> None:
        """Set ``shared_data[key]`` under the job's lock."""
        with self._lock:
            self.shared_data[key] = value
        self._updated_at = time.time()

    def get_shared_data(self, key: str, default: Any = None) -> Any:
        """``shared_data.get(key, default)`` under the job's lock."""
        with self._lock:
            return self.shared_data.get(key, default)

    def append_to_shared_log(self, entry: Any) -> None:
        """Append ``entry`` to ``shared_log`` under the job's lock."""
        with self._lock:
            self.shared_log.append(entry)
        self._updated_at = time.time()

    def get_shared_log(self) -> list[Any]:
        """A copy of ``shared_log``."""
        with self._lock:
            return list(self.shared_log)

    # -- error -----------------------------------------------------------------------------

    @property
    def error(self) -> ErrorText | None:
        """The error that ended the job as text (``"boom" in job_state.error``), or None.

        ``job_state.error.exception`` (or :attr:`exception`) is the exception itself.
        """
        if self._error_text is None and self._exception is not None:
            self._error_text = ErrorText(self._exception)
        return self._error_text

    @error.setter
    def error(self, value: BaseException | str | None) -> None:
        if isinstance(value, ErrorText):
            value = value.exception
        elif isinstance(value, str):
            value = RoutiluxError(value)
        self._exception = value
        self._error_text = None

    @property
    def exception(self) -> BaseException | None:
        """The exception that ended the job, or None."""
        return self._exception

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def cancel_requested(self) -> bool:
        """True once the job was cancelled or timed out; long-running logic should return."""
        return self._cancel_requested

    @property
    def is_finished(self) -> bool:
        """True once the job reached a terminal status."""
        return self._finished

    def wait_for_completion(self, timeout: float | None = None) -> bool:
        """The original routilux's name for :meth:`wait`."""
        return self.wait(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job reaches a terminal status; False if ``timeout`` ran out."""
        if self._finished:
            return True
        if timeout is None:
            acquired = self._done.acquire()
        else:
            acquired = self._done.acquire(timeout=max(0.0, timeout))
        if acquired:
            self._done.release()
            return True
        return self._finished

    def _mark_done(self, release_claim: bool = True) -> None:
        """Terminal: wake waiters. ``release_claim=False`` while cancelled logic still runs."""
        with self._lock:
            if release_claim:
                self._claimed = False
            self._finished = True
        self._done.release()

    def _release_claim(self) -> None:
        with self._lock:
            self._claimed = False

    def _claim_for_run(self) -> bool:
        """Make this job (new, or finished) unfinished for a new run; False if a run has it."""
        with self._lock:
            if self._claimed:
                return False
            self._claimed = True
            if self._finished:
                self._done.acquire()
                self._finished = False
            return True

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish (or to now while running)."""
        if self.started_at is None:
            return None
        end = self.finished_at if self.finished_at is not None else time.time()
        return end - self.started_at

    @property
    def completed_at(self) -> float | None:
        """When the job reached its terminal status (the original routilux's name)."""
        return self.finished_at

    @property
    def updated_at(self) -> float:
        """When anything of the job last changed: status, routine state, shared data, history."""
        return max(self._updated_at, self.started_at or 0.0, self.finished_at or 0.0)

    def queue_depths(self) -> dict[str, dict[str, int]]:
        """Items waiting in each slot while the job runs: ``{routine_id: {slot: count}}``.

        Only routines with something queued are listed; a job that is not running has none.
        """
        run = self._live_run
        return run.queue_depths() if run is not None else {}

    def record(self, routine_id: str, kind: str, detail: Any = None) -> None:
        """Append one entry to the bounded event history (errors, retries, late emits)."""
        now = time.time()
        self.history.append((now, routine_id, kind, detail))
        self._updated_at = now

    def record_execution(
        self,
        routine_id: str,
        outcome: str,
        data: dict[str, Any] | None = None,
        started_at: float | None = None,
        finished_at: float | None = None,
        attempt: int = 0,
    ) -> ExecutionRecord:
        """Append one activation to the execution history and return its record.

        The engine calls it once per finished activation (the one place a record is
        built); the original routilux's ``record_execution(routine_id, event_name, data)``
        works too.
        """
        if finished_at is None:
            finished_at = time.time()
        record = ExecutionRecord(
            routine_id,
            outcome,
            finished_at if started_at is None else started_at,
            finished_at,
            attempt,
            data,
        )
        executions = self._executions
        executions.append(record)  # list.append is atomic: no lock on the hottest path
        if len(executions) > HISTORY_LIMIT + HISTORY_LIMIT // 4:
            with self._lock:
                del executions[: len(executions) - HISTORY_LIMIT]
        self._updated_at = finished_at
        return record

    @property
    def execution_history(self) -> list[ExecutionRecord]:
        """The last ``HISTORY_LIMIT`` finished activations, oldest first (a copy)."""
        return self._executions[-HISTORY_LIMIT:]

    def get_execution_history(self, routine_id: str | None = None) -> list[ExecutionRecord]:
        """The execution history, oldest first, optionally of one routine."""
        records = self.execution_history
        if routine_id is None:
            return records
        return [record for record in records if record.routine_id == routine_id]

    def get_routine_status(self, routine_id: str) -> str | None:
        """How the routine's last activation still in the history ended, or None.

        ``completed``, ``failed``, ``skipped`` or ``retried``: what the original routilux
        kept as ``status`` in the routine's state (see docs/differences-from-routilux.md).
        """
        for record in reversed(self.execution_history):
            if record.routine_id == routine_id:
                return record.outcome
        return None

    def to_dict(self, execution_history: bool = True, *, compact: bool = False) -> dict[str, Any]:
        """A JSON-friendly snapshot (errors as text); ``execution_history=False`` leaves
        that key out (a job store that keeps it as rows). ``compact=True`` also leaves out
        what a job store keeps in columns of its own (ids, status, timestamps) and every
        key still at the value of a job that ended cleanly (the keys of
        ``core.job_store.FINAL_STATE_DEFAULTS``): what a job store keeps per job."""
        with self._lock:
            states = {key: dict(value) for key, value in self._routine_states.items()}
        snapshot: dict[str, Any] = (
            {}
            if compact
            else {"job_id": self.job_id, "flow_id": self.flow_id, "status": str(self.status)}
        )
        exception = self._exception
        if exception is not None:
            snapshot["error"] = f"{type(exception).__name__}: {exception_text(exception)}"
        elif not compact:
            snapshot["error"] = None
        if not compact or self.error_routine_id is not None:
            snapshot["error_routine_id"] = self.error_routine_id
        if not compact:
            snapshot["created_at"] = self.created_at
            snapshot["started_at"] = self.started_at
            snapshot["finished_at"] = self.finished_at
        snapshot["routine_states"] = states
        snapshot["shared_data"] = dict(self.shared_data)
        snapshot["shared_log"] = list(self.shared_log)
        # (each test spares a comprehension call where it is empty: most jobs, when a
        # durable store keeps every finished job's snapshot)
        if self.errors:
            snapshot["errors"] = [dict(entry) for entry in list(self.errors)]
        elif not compact:
            snapshot["errors"] = []
        if self.unconsumed:
            # dict() copies in one step: late emits of a cancelled job may add keys meanwhile
            snapshot["unconsumed"] = {
                rid: {slot: list(items) for slot, items in dict(slots).items()}
                for rid, slots in dict(self.unconsumed).items()
            }
        elif not compact:
            snapshot["unconsumed"] = {}
        if self.skipped_routines or not compact:
            snapshot["skipped_routines"] = sorted(self.skipped_routines)
        if self.history:
            snapshot["history"] = [
                {"time": t, "routine_id": rid, "kind": kind, "detail": detail}
                for t, rid, kind, detail in list(self.history)
            ]
        elif not compact:
            snapshot["history"] = []
        if execution_history:
            snapshot["execution_history"] = [record.to_dict() for record in self.execution_history]
        return snapshot

    def compact_json(self, execution_history: bool) -> str:
        """``to_dict(execution_history, compact=True)`` as JSON text (what a JSON cannot
        hold becomes its repr). A job that ended cleanly, the most common by far, is written
        straight from its three containers, without copying them first."""
        if (
            execution_history
            or self._exception is not None
            or self.error_routine_id is not None
            or self.errors
            or self.unconsumed
            or self.skipped_routines
            or self.history
        ):
            return lenient_json(self.to_dict(execution_history, compact=True))
        encode = lenient_chunks
        if encode is None:  # an interpreter without CPython's JSON accelerator
            return lenient_json(self.to_dict(False, compact=True))
        states = "{}"
        if self._routine_states:
            with self._lock:  # copied under the lock, encoded outside it (as to_dict does)
                copied = {key: dict(value) for key, value in self._routine_states.items()}
            states = "".join(encode(copied, 0))
        # The C encoder takes a list of a dict's items first: a write racing it breaks nothing.
        shared = "".join(encode(self.shared_data, 0)) if self.shared_data else "{}"
        log = "".join(encode(list(self.shared_log), 0)) if self.shared_log else "[]"
        return f'{{"routine_states":{states},"shared_data":{shared},"shared_log":{log}}}'

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobState:
        """Rebuild a saved job (from :meth:`to_dict`) so ``Runtime.exec(job_state=...)`` resumes it.

        Routine states, shared data and log, and data left in slots come back; the
        status starts over as pending.
        """
        state = cls(data["flow_id"], job_id=data.get("job_id"))
        state._routine_states = {k: dict(v) for k, v in data.get("routine_states", {}).items()}
        state.shared_data = dict(data.get("shared_data", {}))
        state.shared_log = list(data.get("shared_log", []))
        state.errors = [dict(e) for e in data.get("errors", [])]
        state.unconsumed = {
            rid: {slot: list(items) for slot, items in slots.items()}
            for rid, slots in data.get("unconsumed", {}).items()
        }
        return state

    def __repr__(self) -> str:
        return f"<JobState {self.job_id} flow={self.flow_id!r} status={self.status}>"
