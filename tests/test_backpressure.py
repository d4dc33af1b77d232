"""A full slot refuses (or blocks) an emit; it never drops data silently."""

from __future__ import annotations

import threading
import time
from typing import Any

from routilux_kernel import Flow, SlotFullError

WAIT = 10.0


def bounded_flow(
    make_routine, gate: threading.Event, *, length: int, items: int, **slot_options: Any
) -> tuple[Flow, dict[str, Any]]:
    """``source`` emits ``items`` into ``worker`` (slot of ``length``) and, unbounded, ``spare``.

    The worker holds its first activation on ``gate``; the source records every emit's
    outcome and opens the gate once it is done emitting.
    """
    seen: dict[str, Any] = {"worker": [], "spare": [], "refused": [], "emit_seconds": []}
    flow = Flow("bounded")
    source = make_routine(["trigger"], ["out"])

    def emit_items(slot_data, message, job_state):
        for i in range(items):
            started = time.monotonic()
            try:
                source.emit("out", i=i)
            except SlotFullError as exc:
                seen["refused"].append((i, str(exc)))
            seen["emit_seconds"].append(time.monotonic() - started)
        if slot_data["trigger"][0].get("open_gate", True):
            gate.set()

    def work(slot_data, message, job_state):
        seen["worker"].append([item["i"] for item in slot_data["input"]])
        gate.wait(WAIT)

    def spare(slot_data, message, job_state):
        seen["spare"].extend(item["i"] for item in slot_data["input"])

    source.set_logic(emit_items)
    flow.add_routine(source, "source")
    flow.add_routine(
        make_routine(["input"], [], work, max_queue_length=length, **slot_options), "worker"
    )
    flow.add_routine(make_routine(["input"], [], spare), "spare")
    flow.connect("source", "out", "worker", "input")
    flow.connect("source", "out", "spare", "input")
    return flow, seen


def test_full_slot_refuses_the_emit_naming_job_routine_and_slot(
    runtime, make_routine, gates
) -> None:
    gate = gates.new()
    flow, seen = bounded_flow(make_routine, gate, length=2, items=5)
    state = runtime.run(flow, timeout=WAIT)
    assert state.status == "completed"
    # item 0 runs (held); 1 and 2 fill the slot; 3 and 4 are refused
    assert [i for i, _ in seen["refused"]] == [3, 4]
    message = seen["refused"][0][1]
    assert state.job_id in message
    assert "slot 'input' of routine 'worker' is full (2 items)" in message
    assert "'bounded'" in message and "'source'.out" in message
    assert "nothing was delivered" in message
    assert seen["worker"] == [[0], [1, 2]]


def test_refused_emit_reaches_no_target_at_all(runtime, make_routine, gates) -> None:
    gate = gates.new()
    flow, seen = bounded_flow(make_routine, gate, length=1, items=4)
    state = runtime.run(flow, timeout=WAIT)
    assert state.status == "completed"
    assert [i for i, _ in seen["refused"]] == [2, 3]
    assert sorted(seen["spare"]) == [0, 1]  # the spare slot had room, yet got nothing refused
    assert seen["worker"] == [[0], [1]]
    assert state.unconsumed == {}


def test_uncaught_slot_full_error_fails_the_emitting_routine(runtime, make_routine, gates) -> None:
    gate = gates.new()
    flow = Flow("overflow")
    source = make_routine(["trigger"], ["out"])

    def flood(slot_data, message, job_state):
        for i in range(3):
            source.emit("out", i=i)

    source.set_logic(flood)
    flow.add_routine(source, "source")
    flow.add_routine(
        make_routine(["input"], [], lambda *a: gate.wait(WAIT), max_queue_length=1), "worker"
    )
    flow.connect("source", "out", "worker", "input")
    state = runtime.run(flow, timeout=WAIT)
    gate.set()
    assert state.status == "failed"
    assert isinstance(state.error, SlotFullError)
    assert state.error_routine_id == "source"


def test_block_waits_for_room_instead_of_refusing(runtime, make_routine, gates) -> None:
    gate = gates.new()
    flow, seen = bounded_flow(
        make_routine, gate, length=1, items=4, on_full="block", block_timeout=WAIT
    )
    opener = threading.Timer(0.15, gate.set)  # the held worker is released from outside
    opener.start()
    try:
        state = runtime.run(flow, {"open_gate": False}, timeout=WAIT)
    finally:
        opener.cancel()
    assert state.status == "completed"
    assert seen["refused"] == []
    assert [i for batch in seen["worker"] for i in batch] == [0, 1, 2, 3]
    assert sorted(seen["spare"]) == [0, 1, 2, 3]
    # the third emit found the slot full and waited until the worker made room
    assert seen["emit_seconds"][2] >= 0.1


def test_block_gives_up_after_block_timeout(runtime, make_routine, gates) -> None:
    gate = gates.new()
    flow, seen = bounded_flow(
        make_routine, gate, length=1, items=3, on_full="block", block_timeout=0.1
    )
    state = runtime.run(flow, timeout=WAIT)
    assert state.status == "completed"
    assert [i for i, _ in seen["refused"]] == [2]
    assert 0.09 <= seen["emit_seconds"][2] < 0.5
    assert "is full (1 items)" in seen["refused"][0][1]


def test_blocked_emitter_is_released_when_the_job_is_cancelled(
    runtime, make_routine, gates
) -> None:
    gate = gates.new()
    flow, seen = bounded_flow(
        make_routine, gate, length=1, items=3, on_full="block", block_timeout=WAIT
    )
    state = runtime.exec(flow, {"open_gate": False})
    canceller = threading.Timer(0.1, runtime.cancel_job, args=(state.job_id,))
    canceller.start()
    try:
        assert state.wait(WAIT)
    finally:
        canceller.cancel()
    gate.set()
    runtime.shutdown(wait=True)
    assert state.status == "cancelled"
    assert len(seen["emit_seconds"]) == 3
    # blocked until the cancel, not until block_timeout
    assert 0.08 <= seen["emit_seconds"][2] < 1.0
