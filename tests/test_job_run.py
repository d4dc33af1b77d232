"""The scheduler from the user's side: isolation, entries, one activation at a time, completion."""

from __future__ import annotations

import statistics
import threading
import time
from collections import defaultdict

import pytest

from routilux_kernel import Flow, FlowValidationError, JobState
from routilux_kernel.activation_policies import all_slots_ready

WAIT = 10.0


# -- per-job isolation -------------------------------------------------------------------


def test_concurrent_jobs_of_one_flow_never_see_each_others_data(runtime, make_routine) -> None:
    both_running = threading.Barrier(2, timeout=WAIT)
    flow = Flow("isolation")
    source = make_routine(["trigger"], ["out"])

    def emit_tagged(slot_data, message, job_state):
        tag = slot_data["trigger"][0]["tag"]
        both_running.wait()  # both jobs are inside the same routine definition now
        for i in range(5):
            source.emit("out", tag=tag, i=i)
            time.sleep(0.001)

    def collect(slot_data, message, job_state):
        seen = job_state.get_routine_state("worker", {}).get("seen", [])
        seen = seen + [(item["tag"], item["i"]) for item in slot_data["input"]]
        job_state.update_routine_state("worker", {"seen": seen})
        time.sleep(0.002)

    source.set_logic(emit_tagged)
    flow.add_routine(source, "source")
    flow.add_routine(make_routine(["input"], [], collect), "worker")
    flow.connect("source", "out", "worker", "input")
    a = runtime.exec(flow, {"tag": "A"})
    b = runtime.exec(flow, {"tag": "B"})
    assert runtime.wait_until_all_jobs_finished(timeout=WAIT)
    assert (a.status, b.status) == ("completed", "completed")
    assert a.get_routine_state("worker") == {"seen": [("A", i) for i in range(5)]}
    assert b.get_routine_state("worker") == {"seen": [("B", i) for i in range(5)]}


def test_many_jobs_keep_their_own_shared_data(runtime, make_chain) -> None:
    flow = make_chain(length=3)
    states = [runtime.exec(flow, {"n": n}) for n in range(40)]
    assert runtime.wait_until_all_jobs_finished(timeout=WAIT)
    for n, state in enumerate(states):
        assert state.status == "completed"
        assert state.shared_log == [("r0", [{"n": n}]), ("r1", [{"n": n}]), ("r2", [{"n": n}])]


# -- entry selection -----------------------------------------------------------------------


def entry_flow(make_routine) -> Flow:
    """a, c: unfed trigger slots (entries); b: trigger fed by a; d: no trigger slot."""
    flow = Flow("entries")
    routines = {}
    for rid, slots in {
        "a": ["trigger"],
        "b": ["trigger"],
        "c": ["trigger"],
        "d": ["input"],
    }.items():
        routine = make_routine(slots, ["out"])

        def logic(slot_data, message, job_state, _rid=rid):
            job_state.shared_data[_rid] = slot_data
            routines[_rid].emit("out", source=_rid)

        routine.set_logic(logic)
        routines[rid] = routine
        flow.add_routine(routine, rid)
    flow.connect("a", "out", "b", "trigger")
    return flow


def test_default_entries_are_routines_with_an_unfed_trigger(runtime, make_routine) -> None:
    state = runtime.run(entry_flow(make_routine), {"go": 1}, timeout=WAIT)
    assert state.status == "completed"
    assert state.shared_data == {
        "a": {"trigger": [{"go": 1}]},
        "c": {"trigger": [{"go": 1}]},
        "b": {"trigger": [{"source": "a"}]},
    }


def test_entry_params_default_to_an_empty_dict(runtime, make_routine) -> None:
    state = runtime.run(entry_flow(make_routine), timeout=WAIT)
    assert state.shared_data["a"] == {"trigger": [{}]}
    assert state.shared_data["c"] == {"trigger": [{}]}


def test_each_entry_gets_its_own_copy_of_entry_params(runtime, make_routine) -> None:
    flow = Flow("copies")
    for rid in ("x", "y"):

        def mutate(slot_data, message, job_state, _rid=rid):
            item = slot_data["trigger"][0]
            item[_rid] = True
            job_state.shared_data[_rid] = dict(item)

        flow.add_routine(make_routine(["trigger"], [], mutate), rid)
    params = {"shared": 1}
    state = runtime.run(flow, params, timeout=WAIT)
    assert state.shared_data == {"x": {"shared": 1, "x": True}, "y": {"shared": 1, "y": True}}
    assert params == {"shared": 1}


def test_entry_routine_id_selects_one_entry(runtime, make_routine) -> None:
    state = runtime.run(entry_flow(make_routine), {"go": 2}, entry_routine_id="c", timeout=WAIT)
    assert state.shared_data == {"c": {"trigger": [{"go": 2}]}}


def test_entry_routine_id_list_selects_several(runtime, make_routine) -> None:
    state = runtime.run(
        entry_flow(make_routine), {"go": 3}, entry_routine_id=["c", "d"], timeout=WAIT
    )
    # d has no trigger slot but a single slot: the entry data goes there
    assert state.shared_data == {"c": {"trigger": [{"go": 3}]}, "d": {"input": [{"go": 3}]}}


def test_unknown_entry_routine_names_the_routines(runtime, make_routine) -> None:
    with pytest.raises(
        FlowValidationError, match="entry routine 'zz' does not exist; routines: a, b, c, d"
    ):
        runtime.exec(entry_flow(make_routine), entry_routine_id="zz")


def test_entry_routine_without_trigger_among_several_slots_is_an_error(
    runtime, make_routine
) -> None:
    flow = Flow("two_slots")
    flow.add_routine(make_routine(["left", "right"], [], lambda *a: None), "join")
    with pytest.raises(FlowValidationError, match="'join' has no 'trigger' slot and 2 slots"):
        runtime.exec(flow, entry_routine_id="join")


def test_flow_with_no_entry_routine_fails_at_exec(runtime, make_routine) -> None:
    flow = Flow("no_entry")
    flow.add_routine(make_routine(["input"], [], lambda *a: None), "lonely")
    with pytest.raises(FlowValidationError) as info:
        runtime.exec(flow)
    assert "has no entry routine" in str(info.value)
    assert "'no_entry'" in str(info.value) and "lonely" in str(info.value)
    assert runtime.list_jobs() == []


# -- one activation at a time per (job, routine) -----------------------------------------


def test_one_activation_per_routine_per_job_while_jobs_overlap(make_runtime, make_routine) -> None:
    runtime = make_runtime(thread_pool_size=12)
    lock = threading.Lock()
    running: dict[str, int] = defaultdict(int)
    peak: dict[str, int] = defaultdict(int)
    overall = {"running": 0, "peak": 0}
    first_of_two_jobs = threading.Barrier(2, timeout=WAIT)
    flow = Flow("actor")
    for s in range(3):  # three entry routines feed one worker at the same time
        source = make_routine(["trigger"], ["out"])

        def emit_many(slot_data, message, job_state, _source=source):
            for i in range(10):
                _source.emit("out", i=i)
                time.sleep(0.0005)

        source.set_logic(emit_many)
        flow.add_routine(source, f"source{s}")

    def work(slot_data, message, job_state):
        job = job_state.job_id
        with lock:
            running[job] += 1
            peak[job] = max(peak[job], running[job])
            overall["running"] += 1
            overall["peak"] = max(overall["peak"], overall["running"])
        try:
            if job_state.get_routine_state("worker") is None and job_state.shared_data.get("pair"):
                first_of_two_jobs.wait()  # two different jobs run this routine at once
            time.sleep(0.002)
            got = job_state.get_routine_state("worker", {}).get("items", 0)
            job_state.update_routine_state("worker", {"items": got + len(slot_data["input"])})
        finally:
            with lock:
                running[job] -= 1
                overall["running"] -= 1

    flow.add_routine(make_routine(["input"], [], work), "worker")
    for s in range(3):
        flow.connect(f"source{s}", "out", "worker", "input")

    states = []
    for n in range(4):
        state = JobState(flow.flow_id)
        state.shared_data["pair"] = n < 2
        states.append(runtime.exec(flow, job_state=state))
    assert runtime.wait_until_all_jobs_finished(timeout=WAIT)
    assert [s.status for s in states] == ["completed"] * 4, [s.error for s in states]
    assert [s.get_routine_state("worker") for s in states] == [{"items": 30}] * 4
    assert set(peak.values()) == {1}
    assert overall["peak"] >= 2


def test_thread_pool_size_bounds_activations_running_at_once(make_runtime, make_routine) -> None:
    runtime = make_runtime(thread_pool_size=3)
    lock = threading.Lock()
    running = {"now": 0, "peak": 0}

    def busy(slot_data, message, job_state):
        with lock:
            running["now"] += 1
            running["peak"] = max(running["peak"], running["now"])
        time.sleep(0.02)
        with lock:
            running["now"] -= 1

    flow = Flow("bounded_pool")
    flow.add_routine(make_routine(logic=busy), "busy")
    start = time.monotonic()
    states = [runtime.exec(flow) for _ in range(9)]
    assert runtime.wait_until_all_jobs_finished(timeout=WAIT)
    elapsed = time.monotonic() - start
    assert all(s.status == "completed" for s in states)
    assert running["peak"] == 3
    assert elapsed >= 0.06 * 0.9  # three rounds of three


# -- completion without polling ----------------------------------------------------------


def test_trivial_job_overhead_is_well_under_a_millisecond(make_runtime, make_routine) -> None:
    runtime = make_runtime(thread_pool_size=4)
    flow = Flow("trivial")
    flow.add_routine(make_routine(logic=lambda *a: None), "noop")
    runtime.run(flow, timeout=WAIT)  # warm up: plan and pool
    durations = []
    for _ in range(300):
        start = time.perf_counter()
        state = runtime.exec(flow)
        state.wait(WAIT)
        durations.append(time.perf_counter() - start)
        assert state.status == "completed"
    assert statistics.median(durations) < 0.001


def test_wait_returns_as_soon_as_the_work_is_done(runtime, make_chain) -> None:
    flow = make_chain(length=2)
    flow.routines["r1"].set_logic(lambda *a: time.sleep(0.1))
    start = time.monotonic()
    state = runtime.exec(flow)
    assert state.wait(WAIT)
    elapsed = time.monotonic() - start
    assert state.status == "completed"
    assert 0.1 <= elapsed < 0.15


def test_waiters_see_a_blocked_job_as_unfinished(runtime, make_routine, gates) -> None:
    gate = gates.new()
    flow = Flow("blocked")
    flow.add_routine(make_routine(logic=lambda *a: gate.wait(WAIT)), "held")
    quick = Flow("quick")
    quick.add_routine(make_routine(logic=lambda *a: None), "noop")
    held = runtime.exec(flow)
    done = runtime.run(quick, timeout=WAIT)
    assert done.status == "completed"
    assert held.wait(0.05) is False
    assert runtime.wait_until_all_jobs_finished(timeout=0.1) is False
    assert held.status == "running" and not held.is_finished
    gate.set()
    assert runtime.wait_until_all_jobs_finished(timeout=WAIT) is True
    assert held.status == "completed" and held.is_finished
    assert all(s.status.is_terminal for s in runtime.list_jobs())


def test_wait_until_all_jobs_finished_with_no_jobs_is_true(runtime) -> None:
    assert runtime.wait_until_all_jobs_finished(timeout=0) is True


def test_unconsumed_join_data_is_recorded_on_the_job(runtime, make_routine) -> None:
    calls = []
    flow = Flow("half_join")
    source = make_routine(["trigger"], ["out"])
    source.set_logic(lambda d, m, s: [source.emit("out", n=1), source.emit("out", n=2)])
    join = make_routine(["left", "right"], [], lambda *a: calls.append(a), policy=all_slots_ready())
    flow.add_routine(source, "source")
    flow.add_routine(join, "join")
    flow.connect("source", "out", "join", "left")
    state = runtime.run(flow, timeout=WAIT)
    assert state.status == "completed"
    assert calls == []
    assert state.unconsumed == {"join": {"left": [{"n": 1}, {"n": 2}]}}


def test_a_completed_job_with_everything_consumed_has_no_leftovers(runtime, make_chain) -> None:
    state = runtime.run(make_chain(length=4), {"v": 1}, timeout=WAIT)
    assert state.status == "completed"
    assert state.unconsumed == {}
    assert [entry[0] for entry in state.shared_log] == ["r0", "r1", "r2", "r3"]
