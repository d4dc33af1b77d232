"""The order in which a durable job's checkpoints reach its store.

A commit may reach the store only after the commits of the activations that produced what
it consumed: after a crash between the two, recovery would otherwise find a committed
consumer of an item that no committed activation produced. Driven here step by step, so
each interleaving is the one owed, not one a thread pool happened to make.
"""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

from routilux_kernel.core.effect_recording import current_recorder
from routilux_kernel.core.execution_record import COMPLETED, ExecutionRecord
from routilux_kernel.core.job_state import JobState
from routilux_kernel.core.job_store import ActivationCommit, JobUpdate, ProcessIdentity
from routilux_kernel.engine.checkpoints import ActivationRecorder, JobCheckpoints
from routilux_kernel.stores.memory_store import MemoryJobStore


class HandOvers(MemoryJobStore):
    """A durable store that keeps what it is handed, in order."""

    durable = True

    def __init__(self) -> None:
        super().__init__("handovers")
        self.commits: list[ActivationCommit] = []
        self.updates: list[JobUpdate] = []

    def activation_committed(self, commit: ActivationCommit) -> None:
        self.commits.append(commit)

    def job_updated(self, update: JobUpdate) -> None:
        self.updates.append(update)


def routine(routine_id: str, slot: str, left: dict[str, int]) -> Any:
    """What activation_made reads of a routine run; ``left[slot]``: items still queued."""
    return SimpleNamespace(
        routine_id=routine_id,
        spec=SimpleNamespace(slot_keys=((routine_id, slot),)),
        _length=lambda name: left.get(name, 0),
    )


def finish(checkpoints: JobCheckpoints, recorder: ActivationRecorder) -> None:
    record = ExecutionRecord(recorder.routine_id, COMPLETED, 1.0, 2.0, 1)
    assert checkpoints.activation_finished(recorder, record, 1, None) is None


def route(checkpoints: JobCheckpoints, recorder: ActivationRecorder, target: tuple[str, str]):
    token = current_recorder.set(recorder)
    try:
        checkpoints.routed(target, '{"n":1}')
    finally:
        current_recorder.reset(token)


def started(*entries: tuple[str, str]) -> tuple[HandOvers, JobCheckpoints]:
    """A job stored with ``entries`` (numbered 1, 2, ...) and delivered, as exec does."""
    store = HandOvers()
    checkpoints = JobCheckpoints(store, JobState("order"))
    checkpoints.attach(threading.Lock())
    flow = SimpleNamespace(flow_id="order", source_file=None)
    plan = SimpleNamespace(flow=flow, stored_snapshot=(None,))
    checkpoints.store_new_job(plan, list(entries), {}, ProcessIdentity.current(), fresh=True)
    for entry in entries:
        checkpoints.delivered(entry)
    return store, checkpoints


def test_a_consumer_that_finishes_first_is_committed_after_its_producer() -> None:
    store, checkpoints = started(("a", "trigger"))
    a = checkpoints.activation_made(routine("a", "trigger", {}))
    route(checkpoints, a, ("b", "input"))  # a's logic emits to b and is still running
    b = checkpoints.activation_made(routine("b", "input", {}))
    assert (a.consumed, b.consumed) == ([1], [2])

    finish(checkpoints, b)  # b finished first: it waits for a
    assert store.commits == []
    finish(checkpoints, a)
    assert [(c.routine_id, c.consumed) for c in store.commits] == [("a", (1,)), ("b", (2,))]
    assert '["item",2,"b","input",{"n":1}]' in store.commits[0].effects


def test_a_consumer_of_two_producers_waits_for_both() -> None:
    store, checkpoints = started(("a", "trigger"), ("c", "trigger"))
    a = checkpoints.activation_made(routine("a", "trigger", {}))
    c = checkpoints.activation_made(routine("c", "trigger", {}))
    route(checkpoints, a, ("join", "input"))
    route(checkpoints, c, ("join", "input"))  # two items queued for one slot
    join = checkpoints.activation_made(routine("join", "input", {}))
    assert join.consumed == [3, 4]

    finish(checkpoints, join)
    finish(checkpoints, c)
    assert [commit.routine_id for commit in store.commits] == ["c"]
    finish(checkpoints, a)
    assert [commit.routine_id for commit in store.commits] == ["c", "a", "join"]


def test_an_item_left_in_its_queue_is_not_consumed() -> None:
    store, checkpoints = started(("a", "trigger"))
    a = checkpoints.activation_made(routine("a", "trigger", {}))
    route(checkpoints, a, ("b", "input"))
    route(checkpoints, a, ("b", "input"))
    # b's policy took the first of its two items; the second stays queued for the next
    first = checkpoints.activation_made(routine("b", "input", {"input": 1}))
    second = checkpoints.activation_made(routine("b", "input", {}))
    assert (first.consumed, second.consumed) == ([2], [3])
    finish(checkpoints, a)
    finish(checkpoints, second)
    finish(checkpoints, first)
    assert [c.consumed for c in store.commits] == [(1,), (3,), (2,)]


def test_commits_waiting_on_logic_that_outlived_its_job_are_handed_over_with_its_end() -> None:
    store, checkpoints = started(("a", "trigger"))
    a = checkpoints.activation_made(routine("a", "trigger", {}))
    route(checkpoints, a, ("b", "input"))
    b = checkpoints.activation_made(routine("b", "input", {}))
    finish(checkpoints, b)  # waits for a, whose logic never returns (the job timed out)
    checkpoints.job_state.status = "failed"
    checkpoints.job_finished()
    assert [c.routine_id for c in store.commits] == ["b"]
    assert [u.status for u in store.updates] == ["failed"]


def test_two_consumers_of_one_producer_both_wait_for_it() -> None:
    store, checkpoints = started(("a", "trigger"))
    a = checkpoints.activation_made(routine("a", "trigger", {}))
    route(checkpoints, a, ("b", "input"))
    route(checkpoints, a, ("c", "input"))
    b = checkpoints.activation_made(routine("b", "input", {}))
    c = checkpoints.activation_made(routine("c", "input", {}))
    finish(checkpoints, c)
    finish(checkpoints, b)
    assert store.commits == []
    finish(checkpoints, a)
    assert store.commits[0].routine_id == "a"
    assert sorted(commit.routine_id for commit in store.commits[1:]) == ["b", "c"]
