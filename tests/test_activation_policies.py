"""Activation policies: immediate, all_slots_ready, batch_size, time_interval, custom."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from routilux_kernel import Flow, activation_policies
from routilux_kernel.activation_policies import (
    TimeIntervalPolicy,
    all_slots_ready,
    batch_size,
    custom,
    immediate,
    time_interval,
)
from routilux_kernel.core.errors import ActivationPolicyError

WAIT = 10.0


def feed(
    make_routine,
    policy: Any,
    emits: list[tuple[str, Any]],
    *,
    slots: tuple[str, ...] = ("input",),
    pause: float = 0.0,
    hold_first: bool = False,
) -> tuple[Flow, list[tuple[float, dict[str, Any], Any]]]:
    """``source`` emits ``(event, value)`` pairs into ``target``'s same-named slots.

    Each activation of ``target`` is recorded as ``(monotonic time, slot_data, message)``.
    With ``hold_first`` the first activation waits until the source is done emitting.
    """
    calls: list[tuple[float, dict[str, Any], Any]] = []
    done_emitting = threading.Event()
    flow = Flow("policies")
    source = make_routine(["trigger"], slots)

    def emit_all(slot_data, message, job_state):
        for event, value in emits:
            source.emit(event, v=value)
            if pause:
                time.sleep(pause)
        done_emitting.set()

    def record(slot_data, message, job_state):
        calls.append((time.monotonic(), slot_data, message))
        if hold_first and len(calls) == 1:
            done_emitting.wait(WAIT)

    source.set_logic(emit_all)
    flow.add_routine(source, "source")
    flow.add_routine(make_routine(slots, [], record, policy=policy), "target")
    for slot in slots:
        flow.connect("source", slot, "target", slot)
    return flow, calls


def values(slot_data: dict[str, Any], slot: str = "input") -> list[Any]:
    return [item["v"] for item in slot_data[slot]]


def test_tutorial_names_exist_and_build_the_same_policies() -> None:
    assert isinstance(activation_policies.immediate_policy(), type(immediate()))
    assert isinstance(activation_policies.all_slots_ready_policy(), type(all_slots_ready()))
    assert activation_policies.batch_size_policy(3).size == 3
    assert activation_policies.time_interval_policy(0.5).seconds == 0.5
    fn = lambda slots, job_state: (False, None, None)  # noqa: E731
    assert activation_policies.custom_policy(fn).fn is fn


def test_immediate_runs_with_everything_queued_meanwhile(runtime, make_routine) -> None:
    flow, calls = feed(make_routine, immediate(), [("input", i) for i in range(5)], hold_first=True)
    state = runtime.run(flow, timeout=WAIT)
    assert state.status == "completed"
    assert [values(data) for _, data, _ in calls] == [[0], [1, 2, 3, 4]]
    assert calls[0][2] is None


def test_immediate_is_the_default(runtime, make_routine) -> None:
    flow, calls = feed(make_routine, None, [("input", i) for i in range(3)], hold_first=True)
    assert runtime.run(flow, timeout=WAIT).status == "completed"
    assert [values(data) for _, data, _ in calls] == [[0], [1, 2]]


def test_all_slots_ready_pairs_items_in_order(runtime, make_routine) -> None:
    emits = [("left", i) for i in range(3)] + [("right", c) for c in "abc"]
    flow, calls = feed(make_routine, all_slots_ready(), emits, slots=("left", "right"))
    state = runtime.run(flow, timeout=WAIT)
    assert state.status == "completed"
    pairs = [(values(data, "left"), values(data, "right")) for _, data, _ in calls]
    assert pairs == [([0], ["a"]), ([1], ["b"]), ([2], ["c"])]
    assert state.unconsumed == {}


def test_all_slots_ready_interleaved_arrivals_still_pair_in_order(runtime, make_routine) -> None:
    emits = [("right", "a"), ("left", 0), ("left", 1), ("right", "b"), ("left", 2)]
    flow, calls = feed(make_routine, all_slots_ready(), emits, slots=("left", "right"))
    state = runtime.run(flow, timeout=WAIT)
    pairs = [(values(data, "left"), values(data, "right")) for _, data, _ in calls]
    assert pairs == [([0], ["a"]), ([1], ["b"])]
    assert state.unconsumed == {"target": {"left": [{"v": 2}]}}


def test_batch_size_delivers_full_batches_and_records_the_rest(runtime, make_routine) -> None:
    flow, calls = feed(make_routine, batch_size(3), [("input", i) for i in range(7)])
    state = runtime.run(flow, timeout=WAIT)
    assert state.status == "completed"
    assert [values(data) for _, data, _ in calls] == [[0, 1, 2], [3, 4, 5]]
    assert [message for _, _, message in calls] == [{"batch_size": 3}] * 2
    assert state.unconsumed == {"target": {"input": [{"v": 6}]}}


def test_batch_size_flush_at_end_delivers_the_remainder(runtime, make_routine) -> None:
    flow, calls = feed(
        make_routine, batch_size(3, flush_at_end=True), [("input", i) for i in range(8)]
    )
    state = runtime.run(flow, timeout=WAIT)
    assert state.status == "completed"
    assert [values(data) for _, data, _ in calls] == [[0, 1, 2], [3, 4, 5], [6, 7]]
    assert calls[-1][2] == {"batch_size": 3, "final": True}
    assert state.unconsumed == {}


@pytest.mark.parametrize("size", [0, -1, 2.0])
def test_batch_size_must_be_a_positive_int(size: Any) -> None:
    with pytest.raises(ValueError, match="batch_size needs an int >= 1"):
        batch_size(size)


def test_time_interval_spaces_activations_and_strands_nothing(runtime, make_routine) -> None:
    interval = 0.1
    flow, calls = feed(
        make_routine, time_interval(interval), [("input", i) for i in range(8)], pause=0.03
    )
    state = runtime.run(flow, timeout=WAIT)
    assert state.status == "completed"
    delivered = [v for _, data, _ in calls for v in values(data)]
    assert delivered == list(range(8))
    assert state.unconsumed == {}
    times = [t for t, _, _ in calls]
    assert len(times) >= 2
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    # The policy spaces its decisions; logic starts a little after each decision, later
    # when the machine is busy, so a measured gap can shrink by that queueing delay.
    assert min(gaps) >= interval * 0.6, gaps
    assert sum(gaps) >= interval * (len(gaps) - 0.5), gaps


def test_time_interval_delivers_data_arriving_just_before_the_end(runtime, make_routine) -> None:
    interval = 0.15
    flow, calls = feed(make_routine, time_interval(interval), [("input", 0), ("input", 1)])
    start = time.monotonic()
    state = runtime.run(flow, timeout=WAIT)
    elapsed = time.monotonic() - start
    assert state.status == "completed"
    assert [values(data) for _, data, _ in calls] == [[0], [1]]
    assert calls[1][0] - calls[0][0] >= interval * 0.9
    assert elapsed >= interval * 0.9  # the job stayed open for the pending delivery


@pytest.mark.parametrize("seconds", [-1, -0.5, float("inf"), float("-inf"), float("nan"), 86_401])
def test_time_interval_needs_finite_seconds_up_to_a_day(seconds: Any) -> None:
    with pytest.raises(ValueError) as caught:
        time_interval(seconds)
    assert str(caught.value) == (
        f"time_interval needs seconds from 0 to 86400 (one day), got {seconds!r}"
    )
    with pytest.raises(ValueError, match="needs seconds from 0 to 86400"):
        TimeIntervalPolicy(seconds)


@pytest.mark.parametrize("seconds", ["1", True, [1]])
def test_time_interval_needs_a_number(seconds: Any) -> None:
    with pytest.raises(TypeError, match="time_interval needs seconds as a number, got"):
        time_interval(seconds)


def test_custom_policy_decides_with_its_own_rule(runtime, make_routine) -> None:
    def when_sum_reaches_ten(slots, job_state):
        queued = slots.peek("input")
        if sum(item["v"] for item in queued) >= 10:
            return True, {"input": slots.take("input")}, {"total": sum(i["v"] for i in queued)}
        return False, None, None

    # The first activation is held until everything is queued, so the policy is asked
    # again once, with 9, 1 and 2 waiting (without the hold, 9 and 1 could be taken alone).
    emits = [("input", v) for v in (4, 3, 5, 9, 1, 2, 3)]
    flow, calls = feed(make_routine, custom(when_sum_reaches_ten), emits, hold_first=True)
    state = runtime.run(flow, timeout=WAIT)
    assert state.status == "completed"
    assert [(values(data), message) for _, data, message in calls] == [
        ([4, 3, 5], {"total": 12}),
        ([9, 1, 2, 3], {"total": 15}),
    ]
    assert state.unconsumed == {}

    emits = [("input", v) for v in (4, 3, 5, 2)]
    flow, calls = feed(make_routine, custom(when_sum_reaches_ten), emits, hold_first=True)
    state = runtime.run(flow, timeout=WAIT)
    assert [values(data) for _, data, _ in calls] == [[4, 3, 5]]
    assert state.unconsumed == {"target": {"input": [{"v": 2}]}}  # never reached ten


def test_custom_policy_state_is_per_job(make_runtime, make_routine) -> None:
    runtime = make_runtime(thread_pool_size=8)

    def every_other(slots, job_state):
        if not slots.any_ready():
            return False, None, None
        slots.state["seen"] = slots.state.get("seen", 0) + 1
        if slots.state["seen"] % 2 == 0:
            return True, slots.take_all(), slots.state["seen"]
        return False, None, None

    flow, calls = feed(make_routine, custom(every_other), [("input", i) for i in range(2)])
    states = [runtime.exec(flow) for _ in range(10)]
    assert runtime.wait_until_all_jobs_finished(timeout=WAIT)
    assert all(s.status == "completed" for s in states)
    assert sorted(message for _, _, message in calls) == [2] * 10


@pytest.mark.parametrize(
    ("fn", "detail"),
    [
        (lambda slots, job_state: 1 / 0, "ZeroDivisionError"),
        (lambda slots, job_state: 42, "TypeError"),
        (lambda slots, job_state: (True, ["not", "a dict"], None), "data_slice must be a dict"),
        (lambda slots, job_state: (True,), "ValueError"),
    ],
    ids=["raises", "not_a_tuple", "bad_slice", "short_tuple"],
)
def test_broken_policy_fails_the_job_naming_the_routine(runtime, make_routine, fn, detail) -> None:
    flow, calls = feed(make_routine, custom(fn), [("input", 1)])
    state = runtime.run(flow, timeout=WAIT)
    assert state.status == "failed"
    assert isinstance(state.error, ActivationPolicyError)
    message = str(state.error)
    assert "routine 'target'" in message and state.job_id in message
    assert detail in message
    assert state.error_routine_id == "target"
    assert calls == []


def test_broken_policy_on_an_entry_routine_fails_at_start(runtime, make_routine) -> None:
    flow = Flow("bad_entry")
    routine = make_routine(logic=lambda *a: None, policy=custom(lambda slots, job_state: None))
    flow.add_routine(routine, "entry")
    state = runtime.run(flow, timeout=WAIT)
    assert state.status == "failed"
    assert isinstance(state.error, ActivationPolicyError)
    assert "routine 'entry'" in str(state.error)


def test_custom_takes_a_callable() -> None:
    with pytest.raises(TypeError, match="custom policy takes a callable"):
        custom("soon")  # type: ignore[arg-type]
