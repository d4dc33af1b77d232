"""The flows the tests trace: a fan-out/join with one failure that a retry cures."""

from __future__ import annotations

import threading
from typing import Any

from routilux_kernel import ErrorHandler, ErrorStrategy, Flow, Routine
from routilux_kernel.activation_policies import all_slots_ready


class Source(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.add_slot("trigger")
        self.add_event("out", ["n"])

    def logic(self, slot_data: dict[str, Any], policy_message: Any, job_state: Any) -> None:
        self.emit("out", n=slot_data["trigger"][0]["n"])


class Branch(Routine):
    """Doubles (or triples) ``n``; with ``fail_first`` its first attempt in a job raises."""

    def __init__(self, factor: int, fail_first: bool = False) -> None:
        super().__init__()
        self.add_slot("input")
        self.add_event("done", ["value"])
        self.factor = factor
        self.fail_first = fail_first

    def logic(self, slot_data: dict[str, Any], policy_message: Any, job_state: Any) -> None:
        routine_id = job_state.current_routine_id
        tries = job_state.get_routine_state(routine_id, {}).get("tries", 0)
        job_state.update_routine_state(routine_id, {"tries": tries + 1})
        if self.fail_first and tries == 0:
            raise ConnectionError("first attempt always fails")
        self.emit("done", value=slot_data["input"][0]["n"] * self.factor)


class Join(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.add_slot("left")
        self.add_slot("right")
        self.set_activation_policy(all_slots_ready())

    def logic(self, slot_data: dict[str, Any], policy_message: Any, job_state: Any) -> None:
        job_state.shared_data["sum"] = (
            slot_data["left"][0]["value"] + slot_data["right"][0]["value"]
        )


def fan_out_join(flow_id: str) -> Flow:
    """source -> (left, right) -> join; left fails once and is retried."""
    flow = Flow(flow_id)
    flow.add_routine(Source(), "source")
    left = Branch(2, fail_first=True)
    left.set_error_handler(
        ErrorHandler(strategy=ErrorStrategy.RETRY, max_retries=2, retry_delay=0.0)
    )
    flow.add_routine(left, "left")
    flow.add_routine(Branch(3), "right")
    flow.add_routine(Join(), "join")
    flow.connect("source", "out", "left", "input")
    flow.connect("source", "out", "right", "input")
    flow.connect("left", "done", "join", "left")
    flow.connect("right", "done", "join", "right")
    return flow


class Burst(Routine):
    """Emits one item, waits until the sink holds it, then emits ``more`` items."""

    def __init__(self, sink_started: threading.Event, more: int) -> None:
        super().__init__()
        self.add_slot("trigger")
        self.add_event("item", ["i"])
        self.sink_started = sink_started
        self.more = more

    def logic(self, slot_data: dict[str, Any], policy_message: Any, job_state: Any) -> None:
        self.emit("item", i=0)
        assert self.sink_started.wait(10), "the sink never started"
        for i in range(1, self.more + 1):
            self.emit("item", i=i)


class GatedSink(Routine):
    """Signals that it runs, then holds its first activation until ``gate`` opens."""

    def __init__(self, started: threading.Event, gate: threading.Event) -> None:
        super().__init__()
        self.add_slot("input")
        self.started = started
        self.gate = gate

    def logic(self, slot_data: dict[str, Any], policy_message: Any, job_state: Any) -> None:
        self.started.set()
        assert self.gate.wait(10), "the gate never opened"
        job_state.shared_log.extend(item["i"] for item in slot_data["input"])
