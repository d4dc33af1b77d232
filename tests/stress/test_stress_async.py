"""300 concurrent jobs mixing async and sync routines with random awaits and sleeps.

source (async) fans items out to a sync squarer and an async adder (which fails its first
attempt on a third of the items and is retried); both feed an async collector. Every job
must end with exactly its own data, in exact counts, with the default switch interval and
with one of 10 us, which makes threads (workers, timer, the loop) interleave far more often.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from routilux_kernel import ErrorHandler, ErrorStrategy, ExecutionStatus, Flow, Routine, Runtime

JOBS = 300
ITEMS = 6
WAIT = 60.0


async def random_await() -> None:
    await asyncio.sleep(random.choice((0, 0, random.uniform(0, 0.003))))


def build_flow() -> Flow:
    source = Routine()
    source.add_slot("trigger")
    source.add_event("item")

    async def produce(slot_data: Any, message: Any, job_state: Any) -> None:
        key = slot_data["trigger"][0]["key"]
        for i in range(ITEMS):
            await random_await()
            source.emit("item", key=key, i=i)

    source.set_logic(produce)

    squarer = Routine()
    squarer.add_slot("input")
    squarer.add_event("out")

    def square(slot_data: Any, message: Any, job_state: Any) -> None:
        for item in slot_data["input"]:
            time.sleep(random.uniform(0, 0.0005))
            squarer.emit("out", key=item["key"], kind="square", value=item["i"] ** 2)

    squarer.set_logic(square)

    adder = Routine()
    adder.add_slot("input")
    adder.add_event("out")
    adder.set_error_handler(
        ErrorHandler(strategy=ErrorStrategy.RETRY, max_retries=2, retry_delay=0.001)
    )

    async def add(slot_data: Any, message: Any, job_state: Any) -> None:
        for item in slot_data["input"]:
            await random_await()
            tried = job_state.get_routine_state("adder", {})
            marker = f"tried-{item['i']}"
            if item["i"] % 3 == 0 and not tried.get(marker):
                job_state.update_routine_state("adder", {marker: True})
                raise RuntimeError(f"first attempt on item {item['i']} fails")
        for item in slot_data["input"]:
            adder.emit("out", key=item["key"], kind="plus", value=item["i"] + 100)

    adder.set_logic(add)

    collector = Routine()
    collector.add_slot("input")

    async def collect(slot_data: Any, message: Any, job_state: Any) -> None:
        await random_await()
        for item in slot_data["input"]:
            job_state.shared_log.append((item["key"], item["kind"], item["value"]))
        state = job_state.get_routine_state("collector", {"count": 0})
        job_state.update_routine_state(
            "collector", {"count": state["count"] + len(slot_data["input"])}
        )

    collector.set_logic(collect)

    flow = Flow("stress_async")
    flow.add_routine(source, "source")
    flow.add_routine(squarer, "squarer")
    flow.add_routine(adder, "adder")
    flow.add_routine(collector, "collector")
    flow.connect("source", "item", "squarer", "input")
    flow.connect("source", "item", "adder", "input")
    flow.connect("squarer", "out", "collector", "input")
    flow.connect("adder", "out", "collector", "input")
    return flow


def test_300_mixed_async_and_sync_jobs_get_exactly_their_own_results(
    switch_interval: float | None,
) -> None:
    flow = build_flow()
    expected_values = sorted(
        [("square", i**2) for i in range(ITEMS)] + [("plus", i + 100) for i in range(ITEMS)]
    )
    with Runtime(thread_pool_size=4) as runtime:
        states = [runtime.exec(flow, {"key": f"job-{n}"}) for n in range(JOBS)]
        assert runtime.wait_until_all_jobs_finished(WAIT)
        for n, state in enumerate(states):
            assert state.status == ExecutionStatus.COMPLETED, (n, state.error)
            assert {key for key, _, _ in state.shared_log} == {f"job-{n}"}
            assert sorted((kind, value) for _, kind, value in state.shared_log) == expected_values
            assert state.get_routine_state("collector") == {"count": 2 * ITEMS}
            assert state.errors == []
            assert not state.unconsumed
            retried = [d for _, rid, kind, d in state.history if rid == "adder" and kind == "error"]
            assert retried, "a third of the adder's items fail once: some attempt was retried"
    assert runtime.list_jobs(ExecutionStatus.RUNNING) == []
