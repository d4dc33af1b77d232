"""JobState: routine state, current routine, status, history, snapshots."""

from __future__ import annotations

import json
import threading

import pytest

from routilux_kernel import ErrorHandler, ErrorStrategy, ExecutionStatus, Flow, JobState
from routilux_kernel.activation_policies import all_slots_ready, batch_size
from routilux_kernel.core.job_state import HISTORY_LIMIT

WAIT = 10.0


def test_execution_status_prints_and_compares_as_its_name() -> None:
    assert ExecutionStatus.RUNNING == "running"
    assert str(ExecutionStatus.COMPLETED) == "completed"
    assert f"{ExecutionStatus.FAILED}" == "failed"
    assert ExecutionStatus("cancelled") is ExecutionStatus.CANCELLED
    assert [s.is_terminal for s in ExecutionStatus] == [False, False, True, True, True]


def test_new_job_state_is_pending_and_empty() -> None:
    state = JobState("flow")
    assert state.status == "pending"
    assert state.flow_id == "flow"
    assert state.error is None and state.duration is None
    assert state.shared_data == {} and state.shared_log == []
    assert not state.is_finished
    assert state.wait(timeout=0.01) is False
    assert JobState("flow").job_id != state.job_id


def test_get_routine_state_returns_a_copy_or_the_default() -> None:
    state = JobState("flow")
    assert state.get_routine_state("r") is None
    assert state.get_routine_state("r", {"fresh": True}) == {"fresh": True}
    state.update_routine_state("r", {"count": 1})
    copy = state.get_routine_state("r")
    copy["count"] = 99
    copy["intruder"] = True
    assert state.get_routine_state("r") == {"count": 1}
    everything = state.routine_states
    everything["r"]["count"] = 42
    assert state.get_routine_state("r") == {"count": 1}


def test_update_routine_state_merges_and_type_checks() -> None:
    state = JobState("flow")
    state.update_routine_state("r", {"a": 1, "b": 2})
    state.update_routine_state("r", {"b": 3, "c": 4})
    assert state.get_routine_state("r") == {"a": 1, "b": 3, "c": 4}
    with pytest.raises(
        TypeError, match="update_routine_state\\('r', ...\\) takes a dict, got list"
    ):
        state.update_routine_state("r", [("a", 1)])  # type: ignore[arg-type]


def test_concurrent_updates_of_distinct_keys_are_all_kept() -> None:
    state = JobState("flow")

    def writer(n: int) -> None:
        for i in range(200):
            state.update_routine_state("r", {f"w{n}-{i}": i})

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(state.get_routine_state("r")) == 800


def test_current_routine_id_inside_logic_and_none_outside(runtime, make_routine) -> None:
    seen: dict[str, object] = {}
    flow = Flow("f")
    first = make_routine(["trigger"], ["out"])
    second = make_routine(["input"], [])

    def first_logic(slot_data, message, job_state):
        seen["first"] = job_state.current_routine_id
        seen["other_job"] = JobState("elsewhere").current_routine_id
        first.emit("out")

    def second_logic(slot_data, message, job_state):
        seen["second"] = job_state.current_routine_id

    first.set_logic(first_logic)
    second.set_logic(second_logic)
    flow.add_routine(first, "first")
    flow.add_routine(second, "second")
    flow.connect("first", "out", "second", "input")
    state = runtime.run(flow, timeout=WAIT)
    assert state.status == "completed"
    assert seen == {"first": "first", "other_job": None, "second": "second"}
    assert state.current_routine_id is None


def test_step4_counter_keeps_its_count_in_the_job(runtime, make_routine) -> None:
    flow = Flow("counter")
    trigger = make_routine(["trigger"], ["out"])
    trigger.set_logic(lambda d, m, s: [trigger.emit("out", n=i) for i in range(3)])

    def increment(slot_data, message, job_state):
        rid = job_state.current_routine_id
        count = job_state.get_routine_state(rid, {}).get("count", 0)
        job_state.update_routine_state(rid, {"count": count + len(slot_data["input"])})

    flow.add_routine(trigger, "trigger")
    flow.add_routine(make_routine(["input"], [], increment), "counter")
    flow.connect("trigger", "out", "counter", "input")
    states = [runtime.exec(flow) for _ in range(10)]
    assert runtime.wait_until_all_jobs_finished(timeout=WAIT)
    assert [s.get_routine_state("counter") for s in states] == [{"count": 3}] * 10


def test_finished_job_has_timestamps_and_duration(runtime, make_routine) -> None:
    flow = Flow("f")
    flow.add_routine(make_routine(logic=lambda *a: None), "only")
    state = runtime.run(flow, timeout=WAIT)
    assert state.is_finished and state.wait(0) is True
    assert state.created_at <= state.started_at <= state.finished_at
    assert state.duration == state.finished_at - state.started_at


def test_to_dict_is_json_serialisable_after_errors_and_leftovers(runtime, make_routine) -> None:
    flow = Flow("snap")
    source = make_routine(["trigger"], ["left"])

    def emit_and_fail(slot_data, message, job_state):
        job_state.shared_data["seen"] = slot_data["trigger"][0]
        job_state.shared_log.append({"step": 1})
        job_state.update_routine_state("source", {"ran": True})
        source.emit("left", value=7)
        raise RuntimeError("boom")

    source.set_logic(emit_and_fail)
    source.set_error_handler(ErrorHandler(ErrorStrategy.CONTINUE))
    flow.add_routine(source, "source")
    flow.add_routine(
        make_routine(["left", "right"], [], lambda *a: None, policy=all_slots_ready()), "join"
    )
    flow.connect("source", "left", "join", "left")
    state = runtime.run(flow, {"x": 1}, timeout=WAIT)
    snapshot = json.loads(json.dumps(state.to_dict()))
    assert snapshot["status"] == "completed"
    assert snapshot["job_id"] == state.job_id and snapshot["flow_id"] == "snap"
    assert snapshot["routine_states"] == {"source": {"ran": True}}
    assert snapshot["shared_data"] == {"seen": {"x": 1}}
    assert snapshot["shared_log"] == [{"step": 1}]
    assert snapshot["unconsumed"] == {"join": {"left": [{"value": 7}]}}
    assert [(e["routine_id"], e["error_type"], e["action"]) for e in snapshot["errors"]] == [
        ("source", "RuntimeError", "continue")
    ]
    assert any(entry["kind"] == "error" for entry in snapshot["history"])


def test_failed_job_snapshot_names_the_error(runtime, make_routine) -> None:
    flow = Flow("f")

    def fail(slot_data, message, job_state):
        raise KeyError("missing")

    flow.add_routine(make_routine(logic=fail), "only")
    state = runtime.run(flow, timeout=WAIT)
    data = json.loads(json.dumps(state.to_dict()))
    assert data["status"] == "failed"
    assert data["error"] == "KeyError: 'missing'"
    assert data["error_routine_id"] == "only"


def test_history_is_bounded(runtime, make_routine) -> None:
    items = HISTORY_LIMIT + 100
    flow = Flow("noisy")
    source = make_routine(["trigger"], ["out"])
    source.set_logic(lambda d, m, s: [source.emit("out", i=i) for i in range(items)])

    def always_fail(slot_data, message, job_state):
        raise ValueError(slot_data["input"][0]["i"])

    worker = make_routine(["input"], [], always_fail, policy=batch_size(1), max_queue_length=items)
    worker.set_error_handler(ErrorHandler(ErrorStrategy.CONTINUE))
    flow.add_routine(source, "source")
    flow.add_routine(worker, "worker")
    flow.connect("source", "out", "worker", "input")
    state = runtime.run(flow, timeout=WAIT)
    assert state.status == "completed"
    assert len(state.errors) == items
    assert len(state.history) == HISTORY_LIMIT
    # the oldest entries were dropped, the newest kept
    assert state.history[-1][3]["error"] == str(items - 1)
    assert len(state.to_dict()["history"]) == HISTORY_LIMIT


def test_from_dict_restores_what_a_job_owned() -> None:
    original = JobState("flow", job_id="job-1")
    original.update_routine_state("r", {"n": 2})
    original.shared_data["k"] = "v"
    original.shared_log.append("entry")
    original.unconsumed = {"r": {"input": [{"x": 1}]}}
    restored = JobState.from_dict(json.loads(json.dumps(original.to_dict())))
    assert restored.job_id == "job-1" and restored.flow_id == "flow"
    assert restored.status == "pending"
    assert restored.get_routine_state("r") == {"n": 2}
    assert restored.shared_data == {"k": "v"}
    assert restored.shared_log == ["entry"]
    assert restored.unconsumed == {"r": {"input": [{"x": 1}]}}


def _compact_by_hand(full: dict) -> dict:
    """What a job store keeps: the full snapshot less what its columns hold (ids, status,
    timestamps) and keys at their default."""
    from routilux_kernel.core.job_store import FINAL_STATE_DEFAULTS

    columns = ("job_id", "flow_id", "status", "created_at", "started_at", "finished_at")
    return {
        key: value
        for key, value in full.items()
        if key not in columns
        and not (key in FINAL_STATE_DEFAULTS and value == FINAL_STATE_DEFAULTS[key])
    }


def test_the_compact_snapshot_leaves_out_exactly_the_defaults_a_store_puts_back(
    runtime, make_routine
) -> None:
    clean_flow = Flow("clean")

    def clean_logic(slot_data, message, job_state):
        job_state.shared_data.update(done=True, seen=[1, 2.5, None])
        job_state.shared_log.append({"note": "ok"})
        job_state.update_routine_state("only", {"count": 1})

    clean_flow.add_routine(make_routine(logic=clean_logic), "only")
    clean = runtime.run(clean_flow, timeout=WAIT)
    assert clean.status == ExecutionStatus.COMPLETED
    flow = Flow("messy")
    source = make_routine(["trigger"], ["left"])

    def emit_and_fail(slot_data, message, job_state):
        source.emit("left", value=7)
        raise RuntimeError("boom")

    source.set_logic(emit_and_fail)
    flow.add_routine(source, "source")
    flow.add_routine(
        make_routine(["left", "right"], [], lambda *a: None, policy=all_slots_ready()), "join"
    )
    flow.connect("source", "left", "join", "left")
    messy = runtime.run(flow, {"x": 1}, timeout=WAIT)
    assert messy.status == ExecutionStatus.FAILED

    for state in (clean, messy):
        for history in (True, False):
            full = state.to_dict(history)
            assert state.to_dict(history, compact=True) == _compact_by_hand(full)
            # the text a store keeps is the same, however it is made
            assert json.loads(state.compact_json(history)) == _compact_by_hand(full)
    assert set(messy.to_dict(compact=True)) > {"error", "error_routine_id", "errors", "history"}
    assert not {"error", "errors", "history", "unconsumed"} & set(clean.to_dict(compact=True))
