"""Hundreds of concurrent jobs with some routines on worker processes, the rest on threads.

The remote protocol replays each process activation's emits and state writes on the driver,
interleaved with in-process activations of the same and other jobs. Every job must still
end with exactly its own data, in exact counts.
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from collections import Counter

import pytest

from routilux_kernel import ExecutionStatus, Flow, Routine, Runtime
from routilux_kernel.activation_policies import all_slots_ready

JOBS = 200
WORKERS = 2
WAIT = 120.0


def jitter() -> None:
    time.sleep(random.uniform(0, 0.002))


class Source(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.add_slot("trigger")
        self.add_event("item")

    def logic(self, slot_data, policy_message, job_state):
        params = slot_data["trigger"][0]
        for i in range(params["count"]):
            self.emit("item", key=params["key"], i=i)


class Worker(Routine):
    """Runs on the process executor: state writes and emits travel back to the driver."""

    def __init__(self, number: int) -> None:
        super().__init__()
        self.number = number
        self.add_slot("input")
        self.add_event("done")
        self.set_executor("process")

    def logic(self, slot_data, policy_message, job_state):
        jitter()
        name = job_state.current_routine_id
        seen = job_state.get_routine_state(name, {}).get("seen", 0)
        job_state.update_routine_state(name, {"seen": seen + len(slot_data["input"])})
        for item in slot_data["input"]:
            self.emit("done", key=item["key"], i=item["i"], worker=self.number, pid=os.getpid())


class Collector(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.add_slot("input")

    def logic(self, slot_data, policy_message, job_state):
        jitter()
        for item in slot_data["input"]:
            job_state.shared_log.append((item["key"], item["i"], item["worker"]))
            job_state.shared_data.setdefault("pids", set()).add(item["pid"])


class Join(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.add_slot("left")
        self.add_slot("right")
        self.set_activation_policy(all_slots_ready())

    def logic(self, slot_data, policy_message, job_state):
        (left,) = slot_data["left"]
        (right,) = slot_data["right"]
        pairs = job_state.get_routine_state("join", {}).get("pairs", [])
        pair = ((left["key"], left["i"]), (right["key"], right["i"]))
        job_state.update_routine_state("join", {"pairs": [*pairs, pair]})


def build_flow() -> Flow:
    flow = Flow("stress_process")
    flow.add_routine(Source(), "source")
    flow.add_routine(Collector(), "collector")
    flow.add_routine(Join(), "join")
    for w in range(WORKERS):
        flow.add_routine(Worker(w), f"worker{w}")
        flow.connect("source", "item", f"worker{w}", "input")
        flow.connect(f"worker{w}", "done", "collector", "input")
    flow.connect("worker0", "done", "join", "left")
    flow.connect("worker1", "done", "join", "right")
    return flow


@pytest.mark.parametrize("switch", [None, 1e-5], ids=["default_switching", "switch_every_10us"])
def test_jobs_mixing_process_and_thread_routines_keep_exactly_their_own_data(switch) -> None:
    previous = sys.getswitchinterval()
    if switch is not None:
        sys.setswitchinterval(switch)
    try:
        run_mixed_jobs()
    finally:
        sys.setswitchinterval(previous)


def run_mixed_jobs() -> None:
    before = set(threading.enumerate())
    runtime = Runtime(thread_pool_size=4)
    try:
        params = [{"key": f"job-{n}", "count": 1 + n % 3} for n in range(JOBS)]
        flow = build_flow()
        states = [runtime.exec(flow, p) for p in params]
        assert runtime.wait_until_all_jobs_finished(timeout=WAIT) is True
        for p, state in zip(params, states, strict=True):
            key, count = p["key"], p["count"]
            assert state.status == ExecutionStatus.COMPLETED, (key, state.error)
            assert state.errors == [] and state.unconsumed == {}
            expected = Counter((key, i, w) for i in range(count) for w in range(WORKERS))
            assert Counter(state.shared_log) == expected
            for w in range(WORKERS):
                assert state.get_routine_state(f"worker{w}") == {"seen": count}
            pairs = state.get_routine_state("join", {}).get("pairs", [])
            assert sorted(pairs) == [((key, i), (key, i)) for i in range(count)]
            assert os.getpid() not in state.shared_data["pids"]  # workers really ran remotely
    finally:
        runtime.shutdown(wait=True)
    assert runtime.list_jobs(status="running") == []
    leftover = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
    assert leftover == []
