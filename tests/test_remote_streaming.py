"""Remote emits are streamed: routed while the activation runs, under the slots' backpressure."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from routilux_kernel import ErrorHandler, ErrorStrategy, Flow, Routine
from routilux_kernel.core.errors import SlotFullError
from routilux_kernel.core.job_state import ExecutionStatus

WAIT = 30.0


def wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def gated_flow(gate: threading.Event, on_full: str, producer_logic: Any) -> Flow:
    """A process producer -> a thread consumer whose one-item slot it fills while the
    consumer's first activation waits for ``gate``."""
    producer = Routine()
    producer.add_slot("trigger")
    producer.add_event("item")
    producer.set_logic(producer_logic(producer))
    producer.set_executor("process")

    def consume(slot_data: Any, message: Any, job_state: Any) -> None:
        gate.wait(WAIT)
        for item in slot_data["in"]:
            job_state.shared_log.append(item["n"])

    consumer = Routine()
    consumer.add_slot("in", max_queue_length=1, on_full=on_full, block_timeout=WAIT)
    consumer.set_logic(consume)
    consumer.set_executor("thread")
    flow = Flow(f"streamed-{on_full}")
    flow.add_routine(producer, "producer")
    flow.add_routine(consumer, "consumer")
    flow.connect("producer", "item", "consumer", "in")
    return flow


def test_a_remote_emit_into_a_full_blocking_slot_blocks_the_remote_logic(make_runtime, tmp_path):
    finished = tmp_path / "finished"

    def producer_logic(producer: Routine) -> Any:
        def produce(slot_data: Any, message: Any, job_state: Any) -> None:
            for n in range(5):
                job_state.update_routine_state("producer", {"sent": n})
                producer.emit("item", n=n)
            Path(str(finished)).write_text("done")

        return produce

    gate = threading.Event()
    runtime = make_runtime(thread_pool_size=2)
    state = runtime.exec(gated_flow(gate, "block", producer_logic))
    # Item 0 is in the consumer's activation, item 1 fills the slot, so the emit of item 2
    # waits for room: the logic cannot get past it, nor make its next write.
    wait_for(lambda: state.get_routine_state("producer") == {"sent": 2}, "the third emit")
    assert not finished.exists()
    assert state.status == ExecutionStatus.RUNNING
    gate.set()
    assert state.wait(WAIT)
    assert state.status == ExecutionStatus.COMPLETED, state.error
    assert state.shared_log == [0, 1, 2, 3, 4]
    assert finished.read_text() == "done"


def test_a_remote_emit_into_a_full_raising_slot_raises_in_the_remote_logic(make_runtime):
    def producer_logic(producer: Routine) -> Any:
        def produce(slot_data: Any, message: Any, job_state: Any) -> None:
            refused = []
            for n in range(3):
                try:
                    producer.emit("item", n=n)
                except SlotFullError as error:
                    refused.append((n, "slot 'in' of routine 'consumer' is full" in str(error)))
            job_state.shared_data["refused"] = refused

        return produce

    gate = threading.Event()
    runtime = make_runtime(thread_pool_size=2)
    state = runtime.exec(gated_flow(gate, "raise", producer_logic))
    wait_for(lambda: "refused" in state.shared_data, "the producer to finish")
    gate.set()
    assert state.wait(WAIT)
    assert state.status == ExecutionStatus.COMPLETED, state.error
    assert state.shared_data["refused"] == [(2, True)]
    assert state.shared_log == [0, 1]


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_what_a_failed_attempt_emitted_stays_delivered_when_retry_runs_it_again(
    make_runtime, executor
):
    producer = Routine()
    producer.add_slot("trigger")
    producer.add_event("item")
    producer.set_executor(executor)
    producer.set_error_handler(ErrorHandler(ErrorStrategy.RETRY, max_retries=2, retry_delay=0))

    def produce(slot_data: Any, message: Any, job_state: Any) -> None:
        tries = job_state.get_routine_state("producer", {}).get("tries", 0)
        job_state.update_routine_state("producer", {"tries": tries + 1})
        producer.emit("item", n=tries)
        if tries == 0:
            raise ConnectionError("flaky upstream")

    def collect(slot_data: Any, message: Any, job_state: Any) -> None:
        for item in slot_data["in"]:
            job_state.shared_log.append(item["n"])

    collector = Routine()
    collector.add_slot("in")
    collector.set_logic(collect)
    collector.set_executor("thread")
    producer.set_logic(produce)
    flow = Flow(f"retry-keeps-emits-{executor}")
    flow.add_routine(producer, "producer")
    flow.add_routine(collector, "collector")
    flow.connect("producer", "item", "collector", "in")

    runtime = make_runtime(thread_pool_size=2)
    state = runtime.run(flow, timeout=WAIT)
    assert state.status == ExecutionStatus.COMPLETED, state.error
    assert sorted(state.shared_log) == [0, 1]
    assert state.get_routine_state("producer") == {"tries": 2}
    errors = [entry for entry in state.history if entry[2] == "error"]
    assert len(errors) == 1 and "flaky upstream" in str(errors[0][3])


PRODUCER_625_MB = """
import os, sys
from routilux_kernel import Flow, Routine, Runtime

CHUNKS, SIZE = 625, 1 << 20

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024

producer = Routine()
producer.add_slot("trigger")
producer.add_event("chunk")
producer.set_executor("process")

def produce(slot_data, message, job_state):
    for n in range(slot_data["trigger"][0]["chunks"]):
        producer.emit("chunk", data=bytes([n % 256]) * SIZE)

def consume(slot_data, message, job_state):
    total = job_state.shared_data.get("bytes", 0)
    job_state.shared_data["bytes"] = total + sum(len(item["data"]) for item in slot_data["in"])

producer.set_logic(produce)
consumer = Routine()
consumer.add_slot("in", max_queue_length=4, on_full="block")
consumer.set_logic(consume)
consumer.set_executor("thread")
flow = Flow("producer-625mb")
flow.add_routine(producer, "producer")
flow.add_routine(consumer, "consumer")
flow.connect("producer", "chunk", "consumer", "in")
with Runtime(thread_pool_size=2) as runtime:
    warm = runtime.run(flow, {"chunks": 4}, timeout=60)
    assert warm.shared_data["bytes"] == 4 * SIZE, warm.error
    baseline = status("VmRSS")
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # restart the peak (VmHWM) from here
    state = runtime.run(flow, {"chunks": CHUNKS}, timeout=120)
    peak = status("VmHWM")
print(state.status.value, state.shared_data["bytes"], peak - baseline)
"""


def test_a_625_mb_remote_producer_keeps_the_driver_memory_flat(tmp_path):
    """Streamed emits are routed as they come and a full slot holds the producer, so the
    driver holds a few chunks at a time, not the whole output."""
    import subprocess
    import sys

    script = tmp_path / "producer.py"
    script.write_text(PRODUCER_625_MB)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    status, total, growth = done.stdout.split()
    assert (status, int(total)) == ("completed", 625 << 20)
    print(f"driver peak RSS above baseline: {int(growth) / 2**20:.1f} MB")
    assert int(growth) < 150 << 20, f"{int(growth) / 2**20:.1f} MB"
