"""Hundreds of concurrent jobs through fan-out, fan-in and a join, with random delays.

Every job must end with exactly its own data, in exact counts; waiting must mean finished;
shutdown must leave no job running and no worker thread alive. Each test also runs with a
tiny switch interval, which makes the interpreter interleave threads far more often.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Any

from routilux_kernel import ErrorHandler, ErrorStrategy, ExecutionStatus, Flow, Routine, Runtime
from routilux_kernel.activation_policies import all_slots_ready

JOBS = 300
WORKERS = 4
WAIT = 60.0


def jitter() -> None:
    time.sleep(random.uniform(0, 0.002))


def build_flow(gate: threading.Event, flaky: bool = False) -> Flow:
    """source -> worker0..3 (fan-out) -> collector (fan-in); worker0/worker1 -> join.

    With ``flaky``, a third of the worker activations fail once before emitting anything
    (the flow retries them), so retries run among everything else.
    """
    flow = Flow("stress")
    source = Routine()
    source.add_slot("trigger")
    source.add_event("item")

    def emit_items(slot_data, message, job_state):
        params = slot_data["trigger"][0]
        if params.get("hold"):
            gate.wait(WAIT)
        for i in range(params["count"]):
            jitter()
            source.emit("item", key=params["key"], i=i)

    source.set_logic(emit_items)
    flow.add_routine(source, "source")

    collector = Routine()
    collector.add_slot("input")

    def collect(slot_data, message, job_state):
        jitter()
        for item in slot_data["input"]:
            job_state.shared_log.append((item["key"], item["i"], item["worker"]))

    collector.set_logic(collect)
    flow.add_routine(collector, "collector")

    join = Routine()
    join.add_slot("left")
    join.add_slot("right")
    join.set_activation_policy(all_slots_ready())

    def pair(slot_data, message, job_state):
        jitter()
        (left,) = slot_data["left"]
        (right,) = slot_data["right"]
        pairs = job_state.get_routine_state("join", {}).get("pairs", [])
        pairs = pairs + [((left["key"], left["i"]), (right["key"], right["i"]))]
        job_state.update_routine_state("join", {"pairs": pairs})

    join.set_logic(pair)
    flow.add_routine(join, "join")

    failed_once: set[tuple[str, int, int]] = set()
    failed_lock = threading.Lock()

    for w in range(WORKERS):
        worker = Routine()
        worker.add_slot("input")
        worker.add_event("done")

        def work(slot_data, message, job_state, _worker=worker, _w=w):
            first = slot_data["input"][0]
            if flaky and (first["i"] + _w) % 3 == 0:
                with failed_lock:
                    attempt_key = (first["key"], first["i"], _w)
                    fail = attempt_key not in failed_once
                    failed_once.add(attempt_key)
                if fail:
                    raise ConnectionError(f"worker{_w} flaked on {attempt_key}")
            for item in slot_data["input"]:
                jitter()
                _worker.emit("done", key=item["key"], i=item["i"], worker=_w)

        worker.set_logic(work)
        flow.add_routine(worker, f"worker{w}")
        flow.connect("source", "item", f"worker{w}", "input")
        flow.connect(f"worker{w}", "done", "collector", "input")
    flow.connect("worker0", "done", "join", "left")
    flow.connect("worker1", "done", "join", "right")
    if flaky:
        flow.set_error_handler(
            ErrorHandler(ErrorStrategy.RETRY, max_retries=2, retry_delay=0.001, retry_backoff=2.0)
        )
    return flow


def routilux_threads(exclude: set[threading.Thread]) -> list[str]:
    return [
        t.name
        for t in threading.enumerate()
        if t.name.startswith("routilux") and t not in exclude and t.is_alive()
    ]


def check_job(state: Any, key: str, count: int) -> None:
    assert state.status == ExecutionStatus.COMPLETED, (key, state.status, state.error)
    assert state.errors == [] and state.unconsumed == {}
    expected = Counter((key, i, w) for i in range(count) for w in range(WORKERS))
    assert Counter(state.shared_log) == expected
    assert len(state.shared_log) == count * WORKERS
    pairs = state.get_routine_state("join", {}).get("pairs", [])
    # each worker handles its items in order, so the join pairs item i with item i
    assert pairs == [((key, i), (key, i)) for i in range(count)]


def test_concurrent_jobs_keep_exactly_their_own_data(switch_interval) -> None:
    gate = threading.Event()
    flow = build_flow(gate)
    before = set(threading.enumerate())
    runtime = Runtime(thread_pool_size=16)
    try:
        params = [{"key": f"job-{n}", "count": 1 + n % 5} for n in range(JOBS)]
        params[0]["hold"] = True  # one job waits on the gate until every other one is done
        states = [runtime.exec(flow, p) for p in params]
        assert len({s.job_id for s in states}) == JOBS
        for state in states[1:]:
            assert state.wait(WAIT), "job did not finish"
        assert runtime.wait_until_all_jobs_finished(timeout=0.05) is False
        assert states[0].status == ExecutionStatus.RUNNING
        gate.set()
        assert runtime.wait_until_all_jobs_finished(timeout=WAIT) is True
        assert all(s.status.is_terminal for s in states)
        for p, state in zip(params, states, strict=True):
            check_job(state, p["key"], p["count"])
    finally:
        gate.set()
        runtime.shutdown(wait=True)
    assert runtime.list_jobs(status="running") == []
    assert routilux_threads(before) == []


def test_retries_under_load_still_deliver_exact_data(switch_interval) -> None:
    flow = build_flow(threading.Event(), flaky=True)
    before = set(threading.enumerate())
    runtime = Runtime(thread_pool_size=16)
    try:
        params = [{"key": f"r{n}", "count": 1 + n % 4} for n in range(JOBS)]
        states = [runtime.exec(flow, p) for p in params]
        assert runtime.wait_until_all_jobs_finished(timeout=WAIT) is True
        retried = 0
        for p, state in zip(params, states, strict=True):
            check_job(state, p["key"], p["count"])
            retried += [entry[2] for entry in state.history].count("retry")
        assert retried > JOBS  # plenty of retries really happened
    finally:
        runtime.shutdown(wait=True)
    assert routilux_threads(before) == []


def test_waiting_and_shutting_down_under_load(switch_interval) -> None:
    """wait_until_all_jobs_finished is True only with every job terminal, then shutdown is clean."""
    gate = threading.Event()
    flow = build_flow(gate)
    before = set(threading.enumerate())
    runtime = Runtime(thread_pool_size=8)
    try:
        params = [{"key": f"k{n}", "count": 1 + n % 3} for n in range(JOBS)]
        states = [runtime.exec(flow, p) for p in params]
        finished = False
        while not finished:  # a short timeout: False is allowed, a wrong True is not
            finished = runtime.wait_until_all_jobs_finished(timeout=0.02)
            if finished:
                assert all(s.status.is_terminal for s in states)
            else:
                assert any(not s.status.is_terminal for s in runtime.list_jobs())
        for p, state in zip(params, states, strict=True):
            check_job(state, p["key"], p["count"])
    finally:
        runtime.shutdown(wait=True)
    assert all(s.status.is_terminal for s in states)
    assert routilux_threads(before) == []


def test_shutdown_without_wait_leaves_no_job_running(switch_interval) -> None:
    gate = threading.Event()
    flow = build_flow(gate)
    before = set(threading.enumerate())
    runtime = Runtime(thread_pool_size=8)
    states = [runtime.exec(flow, {"key": f"s{n}", "count": 5}) for n in range(JOBS)]
    runtime.shutdown(wait=False)
    assert all(s.status.is_terminal for s in states)
    assert all(s.is_finished for s in states)
    for state in states:
        if state.status == ExecutionStatus.COMPLETED:
            check_job(state, state.shared_log[0][0], 5)
        else:
            assert state.status == ExecutionStatus.CANCELLED
    # shutdown(wait=False) does not join; the workers must still exit on their own
    for thread in threading.enumerate():
        if thread.name.startswith("routilux") and thread not in before:
            thread.join(WAIT)
    assert routilux_threads(before) == []
