"""Parallel map inside one job: 200 jobs x 50 items through a concurrency-8 std.map."""

from __future__ import annotations

import random
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from routilux_std.grouping import Aggregate
from routilux_std.transform import Map

from routilux_kernel import ExecutionStatus, Flow, JobState, Routine, Runtime

JOBS, ITEMS = 200, 50


class Items(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.add_slot("trigger")
        self.add_event("out", ("record",))

    def logic(self, slot_data: Any, message: Any, job_state: JobState) -> None:
        base = slot_data["trigger"][0]["base"]
        for index in range(ITEMS):
            self.emit("out", record={"n": base + index})


class JitteryMap(Map):
    """std.map that sleeps a random 0-2 ms first, and records how many run at once."""

    running = 0
    peak = 0
    lock = threading.Lock()

    def logic(self, slot_data: Any, message: Any, job_state: JobState) -> None:
        with JitteryMap.lock:
            JitteryMap.running += 1
            JitteryMap.peak = max(JitteryMap.peak, JitteryMap.running)
        try:
            time.sleep(random.uniform(0, 0.002))
            super().logic(slot_data, message, job_state)
        finally:
            with JitteryMap.lock:
                JitteryMap.running -= 1


def build_flow() -> Flow:
    square = JitteryMap()
    square.set_config(fields={"n": "n", "sq": "n"})
    square.set_concurrency(8)
    total = Aggregate()
    total.set_config(value="n", operation="list")
    flow = Flow()
    flow.add_routine(Items(), "items")
    flow.add_routine(square, "square")
    flow.add_routine(total, "total")
    flow.connect("items", "out", "square", "in")
    flow.connect("square", "out", "total", "in")
    return flow


class Results(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.add_slot("in")

    def logic(self, slot_data: Any, message: Any, job_state: JobState) -> None:
        job_state.shared_data["values"] = slot_data["in"][0]["value"]


@pytest.fixture(params=["default", "tiny switch interval"])
def switching(request: pytest.FixtureRequest) -> Iterator[None]:
    previous = sys.getswitchinterval()
    if request.param != "default":
        sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def test_200_jobs_of_50_items_through_a_concurrency_8_map(switching: None) -> None:
    flow = build_flow()
    flow.add_routine(Results(), "results")
    flow.connect("total", "aggregated", "results", "in")
    JitteryMap.peak = 0
    with Runtime(thread_pool_size=16, executor="thread") as runtime:
        jobs = [runtime.exec(flow, {"base": job * 1000}) for job in range(JOBS)]
        assert runtime.wait_until_all_jobs_finished(120)
    for job_index, job in enumerate(jobs):
        assert job.status == ExecutionStatus.COMPLETED, job.error
        base = job_index * 1000
        assert sorted(job.shared_data["values"]) == list(range(base, base + ITEMS))
        assert not job.unconsumed
    assert JitteryMap.peak > 1  # activations of the map really overlapped
