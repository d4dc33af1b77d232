"""Checkpoints of one job on a durable store: what each activation consumed, routed and wrote.

Every item put into a slot gets a number (per job). An activation's recorder collects the
numbers of the items its policy took, the items its emits routed (with their data) and its
writes to the job state, all encoded when they happen. When the activation finishes, that
is one :class:`ActivationCommit`. A commit is handed to the store only after the commits of
the activations that produced its inputs, so after a crash no committed activation consumed
an item whose producer is not committed: recovery re-runs exactly the uncommitted ones.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from collections import deque
from typing import TYPE_CHECKING, Any

from routilux_kernel.core.effect_recording import (
    RecordingSharedData,
    RecordingSharedLog,
    current_recorder,
)
from routilux_kernel.core.execution_record import FAILED, ExecutionRecord
from routilux_kernel.core.job_state import HISTORY_LIMIT
from routilux_kernel.core.job_store import (
    ActivationCommit,
    JobStore,
    JobUpdate,
    NewJob,
    ProcessIdentity,
)
from routilux_kernel.core.json_text import json_string, strict_json

if TYPE_CHECKING:
    from routilux_kernel.core.job_state import JobState
    from routilux_kernel.engine.activation import RoutineRun
    from routilux_kernel.engine.plan import FlowPlan


def flow_snapshot(plan: FlowPlan) -> str | None:
    """The flow definition as JSON text, made once per plan (flow version) of a runtime."""
    cached = plan.stored_snapshot
    if cached is not None:
        return cached[0]
    try:
        text: str | None = json.dumps(plan.flow.to_dict(), default=repr)
    except Exception:  # a flow built in code may hold routines no flow file can name
        text = None
    plan.stored_snapshot = (text,)
    return text


class ActivationRecorder:
    """The checkpoint of one activation, filled while it runs (see ``EffectRecorder``)."""

    __slots__ = (
        "checkpoints",
        "job_state",
        "number",
        "routine_id",
        "consumed",
        "ops",
        "produced",
        "started_at",
        "commit",
        "parents",
        "waiting",
        "handed",
        "ran",
    )

    def __init__(
        self, checkpoints: JobCheckpoints, number: int, routine_id: str, consumed: list[int]
    ) -> None:
        self.checkpoints = checkpoints
        self.job_state = checkpoints.job_state
        self.number = number
        self.routine_id = routine_id
        self.consumed = consumed
        self.ops: list[str] = []
        # Most activations route nothing and wait for no parent: these stay the shared
        # empty tuple until a first append (a job on a durable store allocates per activation).
        self.produced: list[int] | tuple[()] = ()
        self.started_at = time.time()
        self.commit: ActivationCommit | None = None
        self.parents = 0
        self.waiting: list[ActivationRecorder] | tuple[()] = ()
        self.handed = False
        self.ran = False  # its logic ran (else the job ended first and kept its data)

    def set_item(self, key: Any, value: Any) -> None:
        # No lambda in here: a variable it captured would cost a cell on every call.
        try:
            text = self.checkpoints.codec.quick(value)
        except Exception:  # encode names the routine and key (or encodes after all)
            text = self._encode(value, f"shared_data[{key!r}]")
        name = json_string(key) if type(key) is str else strict_json(key)
        self.ops.append(f'["set",{name},{text}]')

    def record(self, kind: str, *args: Any) -> None:
        quick = self.checkpoints.codec.quick
        if kind == "set":
            self.set_item(*args)
        elif kind == "state":
            routine_id, updates = args
            try:
                text = quick(updates)
            except Exception:
                text = self._encode(updates, f"update_routine_state({routine_id!r}, ...)")
            self.ops.append(f'["state",{json_string(routine_id)},{text}]')
        elif kind == "delete":
            self.ops.append(f'["delete",{strict_json(args[0])}]')
        elif kind == "clear":
            self.ops.append('["clear"]')
        elif kind == "skip":
            self.ops.append(f'["skip",{json_string(args[0])}]')
        elif kind == "append":
            try:
                text = quick(args[0])
            except Exception:
                text = self._encode(args[0], "shared_log.append")
            self.ops.append(f'["append",{text}]')

    def _encode(self, value: Any, what: str) -> str:
        """The store codec's ``encode``: its error names this routine, its job and ``what``."""
        where = f"routine {self.routine_id!r} of job {self.job_state.job_id}: {what}"
        return self.checkpoints.store.codec.encode(value, where)


#: The lock of checkpoints not attached to a job run yet (correct, if shared).
_UNATTACHED = threading.Lock()


class JobCheckpoints:
    """The checkpoint bookkeeping of one job run (item numbers, recorders, commit order)."""

    __slots__ = (
        "store",
        "codec",
        "job_state",
        "_next_item",
        "_next_activation",
        "_queued",
        "_renumber",
        "_next_delivered",
        "_producers",
        "_rows_of_records",
        "_lock",
    )

    def __init__(
        self,
        store: JobStore,
        job_state: JobState,
        lock: threading.Lock = _UNATTACHED,
        next_item: int = 1,
        next_activation: int = 1,
        numbered: dict[tuple[str, str], deque[int]] | None = None,
    ) -> None:
        self.store = store
        #: Values are encoded by the codec's ``quick``, and by ``encode`` where that raises.
        self.codec = store.codec
        self.job_state = job_state
        self._next_item = next_item
        self._next_activation = next_activation
        #: Numbers of the items in each (routine, slot) queue, in queue order (job lock): an
        #: int while the queue holds one item (most do; a deque costs a block of 64 slots).
        self._queued: dict[tuple[str, str], int | deque[int]] = {}
        #: Numbers of the items ``JobRun.start`` delivers again to a recovered job's queues.
        #: None for a job stored by ``store_new_job``: ``start`` delivers its items in the
        #: order they were numbered there, so each takes the next number.
        self._renumber = numbered
        self._next_delivered = next_item
        self._producers: dict[int, ActivationRecorder] = {}  # until the producer is handed over
        self._rows_of_records = 0  # activation rows made from an execution record
        #: Guards the producers and their waiting lists; the Runtime gives it the job's own
        #: lock (here or by ``attach``): no section under it takes that lock again or calls
        #: user code.
        self._lock = lock
        job_state.shared_data = RecordingSharedData(job_state.shared_data)
        job_state.shared_log = RecordingSharedLog(job_state.shared_log)

    def attach(self, lock: threading.Lock) -> None:
        """Run under ``lock``, the job run's own (see ``_lock``)."""
        self._lock = lock

    # -- creation --------------------------------------------------------------------------

    def store_new_job(
        self,
        plan: FlowPlan,
        entries: list[tuple[str, str]],
        params: dict[str, Any],
        owner: ProcessIdentity,
        fresh: bool = False,
    ) -> None:
        """Number the data ``start`` will deliver, in the order it delivers it (a resumed
        JobState's data left in slots, then the entries), and store the job before it
        starts; ``fresh``: the job's id was made for it just now (not a resumed JobState's)."""
        state = self.job_state
        flow = plan.flow
        number = self._next_item
        items: list[tuple[int, str, str, str]] = []  # made a tuple for the NewJob
        if state.unconsumed:
            encode = self.codec.encode
            for routine_id, slots in state.unconsumed.items():
                for slot, values in slots.items():
                    for value in values:
                        where = f"job {state.job_id}: data left in {routine_id}.{slot}"
                        items.append((number, routine_id, slot, encode(value, where)))
                        number += 1
        if entries:
            try:
                text = self.codec.quick(params)
            except Exception:  # no lambda: its captured variables would cost cells per call
                where = f"job {state.job_id} of flow {flow.flow_id!r}: entry_params"
                text = self.codec.encode(params, where)
            for routine_id, slot in entries:
                items.append((number, routine_id, slot, text))
                number += 1
        self._next_item = number
        cached = plan.stored_snapshot
        self.store.job_created(
            NewJob(  # positional, in field order: keywords cost more on this per-job path
                state.job_id,
                flow.flow_id,
                cached[0] if cached is not None else flow_snapshot(plan),
                flow.source_file,
                tuple(items),
                state.created_at,
                owner,
                "running",
                fresh,
            )
        )

    # -- while the job runs (callers hold the job's lock where noted) ------------------------

    def delivered(self, key: tuple[str, str]) -> None:
        """``start`` put an already numbered item in the queue ``key``, a (routine_id, slot)
        (job lock held)."""
        renumber = self._renumber
        if renumber is None:
            number = self._next_delivered
            self._next_delivered = number + 1
        else:
            number = renumber[key].popleft()
        queued = self._queued
        if key in queued:
            self._enqueue(key, number)
        else:  # _enqueue's first case, inlined: one item per entry slot is the common case
            queued[key] = number

    def _enqueue(self, key: tuple[str, str], number: int) -> None:
        queued = self._queued
        queue = queued.get(key)
        if queue is None:
            queued[key] = number
        elif type(queue) is int:
            queued[key] = deque((queue, number))
        else:
            queue.append(number)  # type: ignore[union-attr]

    def encode_emit(self, routine_id: str, event: str, data: dict[str, Any]) -> str:
        """Encode an emit whose ``codec.quick`` raised (``route_emit`` tries that first,
        before anything of it is delivered): the error names the routine and event."""
        where = f"routine {routine_id!r} of job {self.job_state.job_id}: emit({event!r})"
        return self.codec.encode(data, where)

    def routed(self, target: tuple[str, str], text: str) -> None:
        """An emit put an item in the queue ``target``, a (routine_id, slot) (job lock
        held); the emitting activation owns it."""
        number = self._next_item
        self._next_item = number + 1
        self._enqueue(target, number)
        recorder = current_recorder.get()
        if isinstance(recorder, ActivationRecorder) and recorder.checkpoints is self:
            routine_id, slot = target
            recorder.ops.append(
                f'["item",{number},{json_string(routine_id)},{json_string(slot)},{text}]'
            )
            if recorder.produced:
                recorder.produced.append(number)
            else:
                recorder.produced = [number]
            # No self._lock: one dict store is atomic, and the consumers of this item are
            # made under the job lock this caller holds, so they see it.
            self._producers[number] = recorder

    def activation_made(self, run: RoutineRun) -> ActivationRecorder:
        """A policy took items from the front of the queues (job lock held): name them."""
        queued = self._queued
        consumed: list[int] = []
        number = self._next_activation
        self._next_activation = number + 1
        recorder = ActivationRecorder(self, number, run.routine_id, consumed)
        for key in run.spec.slot_keys:
            queue = queued.get(key)
            if queue is None:
                continue
            if type(queue) is int:
                if not run._length(key[1]):  # its one item was taken
                    consumed.append(queue)
                    del queued[key]
            else:
                for _ in range(len(queue) - run._length(key[1])):  # type: ignore[arg-type]
                    consumed.append(queue.popleft())  # type: ignore[union-attr]
        return recorder

    def activation_finished(
        self,
        recorder: ActivationRecorder,
        record: ExecutionRecord | None,
        attempt: int,
        error: BaseException | None,
    ) -> BaseException | None:
        """Hand the commit over once its inputs' producers are; returns a store failure.

        ``record`` is the job's execution-history entry of the activation, which its row
        repeats; None for an activation that failed before it ran (an executor refused it).
        """
        if record is not None:
            self._rows_of_records += 1
        else:
            record = ExecutionRecord(
                recorder.routine_id, FAILED, recorder.started_at, time.time(), attempt
            )
        consumed = recorder.consumed
        # Positional: keywords double the cost of this once-per-activation object.
        recorder.commit = commit = ActivationCommit(
            self.job_state.job_id,
            recorder.number,
            record.routine_id,
            record.started_at,
            record.finished_at,
            record.outcome,
            record.attempt,
            tuple(consumed),
            "[" + ",".join(recorder.ops) + "]",
        )
        if error is not None:
            commit.error = f"{type(error).__name__}: {error}"
            commit.traceback = _traceback_text(error)
        producers = self._producers
        waits = False
        if producers:
            for number in consumed:
                if number in producers:
                    waits = True
                    break
        if not waits and not recorder.produced:
            # Nothing can wait for it (it routed nothing) and its inputs' producers were
            # handed over (each leaves _producers under the lock as it is): no lock needed.
            recorder.handed = True
            try:
                self.store.activation_committed(commit)
            except Exception:  # the store failed: reported below
                pass
            return self.store.failure()
        with self._lock:
            if waits:
                for number in consumed:
                    parent = producers.get(number)
                    if parent is not None and not parent.handed:
                        if parent.waiting:
                            parent.waiting.append(recorder)
                        else:
                            parent.waiting = [recorder]
                        recorder.parents += 1
            if recorder.parents == 0:
                if recorder.waiting:  # consumers of its items finished first
                    self._hand_over_locked(recorder)
                else:  # _hand_over_locked for one recorder, inlined (a chain's common case)
                    recorder.handed = True
                    for number in recorder.produced:
                        producers.pop(number, None)
                    try:
                        self.store.activation_committed(commit)
                    except Exception:  # the store failed: reported below
                        pass
        return self.store.failure()

    def _hand_over_locked(self, first: ActivationRecorder) -> None:
        ready = [first]
        while ready:
            recorder = ready.pop()
            assert recorder.commit is not None
            recorder.handed = True
            for number in recorder.produced:
                self._producers.pop(number, None)
            try:
                self.store.activation_committed(recorder.commit)
            except Exception:  # the store failed: activation_finished reports it
                pass
            for child in recorder.waiting:
                child.parents -= 1
                if child.parents == 0:
                    ready.append(child)
            recorder.waiting = ()

    def job_finished(self) -> None:
        """Store the job's outcome after every commit of it that can still be handed over.

        The outcome holds ``JobState.to_dict`` less what the job's row and activation rows
        hold already (ids, status and timestamps are columns; the execution history, when
        it is exactly the activation rows) and less the keys that hold their value of a job
        that ended cleanly. ``jobs show`` puts them all back."""
        state = self.job_state
        if self._producers:
            with self._lock:
                # Left waiting only on logic that outlived its (now terminal) job: order no
                # longer matters, recovery never runs a finished job.
                orphans = {
                    child
                    for parent in self._producers.values()
                    for child in parent.waiting
                    if child.commit is not None
                }
                for child in orphans:
                    child.parents = 0
                    self._hand_over_locked(child)
        # The job's execution history is kept in the final state unless it is exactly its
        # activation rows (made from the same records, see activation_finished): then not
        # twice. A retry or an error leaves history events; a record a routine added itself
        # makes one more.
        kept = len(state._executions)  # len(execution_history), uncopied
        if kept > HISTORY_LIMIT:
            kept = HISTORY_LIMIT
        history = bool(state.history) or kept != self._rows_of_records
        update = JobUpdate(  # positional, in field order
            state.job_id,
            str(state.status),
            state.started_at,
            state.finished_at,
            None,
            None,
            state.compact_json(history),
        )
        error = state._exception
        if error is not None:
            update.error = f"{type(error).__name__}: {state.error}"
            update.traceback = _traceback_text(error)
        try:
            self.store.job_updated(update)
        except Exception:  # a failed store already failed this job; nothing more to keep
            pass


def _traceback_text(error: BaseException) -> str:
    text = getattr(error, "traceback_text", None)  # a RoutineError from a remote worker
    if isinstance(text, str) and text:
        return text
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))
