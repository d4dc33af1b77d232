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

#: How many history entries a job keeps (oldest dropped first).
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
        self.error: BaseException | None = None
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

    @property
    def routine_states(self) -> dict[str, dict[str, Any]]:
        """A copy of every routine's state."""
        with self._lock:
            return {key: dict(value) for key, value in self._routine_states.items()}

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def cancel_requested(self) -> bool:
        """True once the job was cancelled or timed out; long-running logic should return."""
        return self._cancel_requested

    @property
    def is_finished(self) -> bool:
        """True once the job reached a terminal status."""
        return self._finished

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

    def record(self, routine_id: str, kind: str, detail: Any = None) -> None:
        """Append one entry to the bounded execution history."""
        self.history.append((time.time(), routine_id, kind, detail))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly snapshot (errors as text)."""
        with self._lock:
            states = {key: dict(value) for key, value in self._routine_states.items()}
        return {
            "job_id": self.job_id,
            "flow_id": self.flow_id,
            "status": str(self.status),
            "error": None if self.error is None else f"{type(self.error).__name__}: {self.error}",
            "error_routine_id": self.error_routine_id,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "routine_states": states,
            "shared_data": dict(self.shared_data),
            "shared_log": list(self.shared_log),
            "errors": [dict(entry) for entry in list(self.errors)],
            # dict() copies in one step: late emits of a cancelled job may add keys meanwhile
            "unconsumed": {
                rid: {slot: list(items) for slot, items in dict(slots).items()}
                for rid, slots in dict(self.unconsumed).items()
            },
            "skipped_routines": sorted(self.skipped_routines),
            "history": [
                {"time": t, "routine_id": rid, "kind": kind, "detail": detail}
                for t, rid, kind, detail in list(self.history)
            ],
        }

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
