"""cancel_job and per-job timeouts: queued work discarded, running logic told to stop."""

from __future__ import annotations

import threading
import time
from typing import Any

from routilux_kernel import Flow, JobTimeoutError
from routilux_kernel.activation_policies import batch_size
from routilux_kernel.core.errors import JobCancelledError

WAIT = 10.0


def held_worker_flow(make_routine, gate: threading.Event, seen: dict[str, Any]) -> Flow:
    """``source`` queues 5 items; ``worker`` holds its first activation on ``gate``.

    ``seen["holding"]`` is set once every item is queued and the worker is held.
    """
    flow = Flow("held")
    holding = threading.Event()
    seen["holding"] = holding
    seen["calls"] = []
    seen["finished"] = threading.Event()
    all_queued = threading.Event()
    source = make_routine(["trigger"], ["out"])

    def emit_all(slot_data, message, job_state):
        for i in range(5):
            source.emit("out", i=i)
        all_queued.set()

    def work(slot_data, message, job_state):
        seen["calls"].append(slot_data["input"][0]["i"])
        all_queued.wait(WAIT)
        holding.set()
        gate.wait(WAIT)
        seen["cancel_requested"] = job_state.cancel_requested
        source_done = seen.get("after_emit")
        if source_done is not None:
            source_done(job_state)
        seen["finished"].set()

    source.set_logic(emit_all)
    flow.add_routine(source, "source")
    flow.add_routine(make_routine(["input"], ["out"], work, policy=batch_size(1)), "worker")
    flow.connect("source", "out", "worker", "input")
    return flow


def test_cancel_discards_queued_work_and_tells_running_logic(runtime, make_routine, gates) -> None:
    gate = gates.new()
    seen: dict[str, Any] = {}
    flow = held_worker_flow(make_routine, gate, seen)
    state = runtime.exec(flow)
    assert seen["holding"].wait(WAIT)
    assert not state.cancel_requested
    assert runtime.cancel_job(state.job_id) is True
    assert state.status == "cancelled"
    assert isinstance(state.error, JobCancelledError)
    assert state.cancel_requested
    assert state.wait(0) is True
    assert runtime.wait_until_all_jobs_finished(timeout=WAIT)
    gate.set()
    assert seen["finished"].wait(WAIT)
    runtime.shutdown(wait=True)  # joins the workers: anything still scheduled would have run
    assert seen["calls"] == [0]
    assert seen["cancel_requested"] is True
    assert state.status == "cancelled"
    assert state.unconsumed == {"worker": {"input": [{"i": i} for i in range(1, 5)]}}


def test_emits_after_cancel_are_not_routed(runtime, make_routine, gates) -> None:
    gate = gates.new()
    seen: dict[str, Any] = {}
    flow = held_worker_flow(make_routine, gate, seen)
    received: list[Any] = []
    flow.add_routine(make_routine(["input"], [], lambda d, m, s: received.append(d)), "sink")
    flow.connect("worker", "out", "sink", "input")
    worker = flow.routines["worker"]
    seen["after_emit"] = lambda job_state: worker.emit("out", late=True)
    state = runtime.exec(flow)
    assert seen["holding"].wait(WAIT)
    assert runtime.cancel_job(state.job_id)
    gate.set()
    assert seen["finished"].wait(WAIT)
    runtime.shutdown(wait=True)
    assert received == []
    assert ("worker", "emit_after_end", "out") in [entry[1:] for entry in state.history]


def test_cancel_of_unknown_or_finished_job_is_false(runtime, make_routine) -> None:
    flow = Flow("quick")
    flow.add_routine(make_routine(logic=lambda *a: None), "noop")
    state = runtime.run(flow, timeout=WAIT)
    assert runtime.cancel_job(state.job_id) is False
    assert runtime.cancel_job("no-such-job") is False
    assert state.status == "completed"


def test_timeout_fails_a_job_whose_logic_hangs(runtime, make_routine, gates) -> None:
    gate = gates.new()
    seen: dict[str, Any] = {}
    released = threading.Event()

    def hang(slot_data, message, job_state):
        gate.wait(WAIT)
        seen["cancel_requested"] = job_state.cancel_requested
        released.set()

    flow = Flow("hangs")
    flow.add_routine(make_routine(logic=hang), "hang")
    start = time.monotonic()
    state = runtime.exec(flow, timeout=0.2)
    assert state.wait(WAIT)
    elapsed = time.monotonic() - start
    assert 0.19 <= elapsed < 0.6
    assert state.status == "failed"
    assert isinstance(state.error, JobTimeoutError)
    assert isinstance(state.error, TimeoutError)
    assert state.job_id in str(state.error) and "'hangs'" in str(state.error)
    assert "0.2s" in str(state.error)
    assert state.cancel_requested
    gate.set()
    assert released.wait(WAIT)
    assert seen["cancel_requested"] is True


def test_run_with_timeout_returns_the_timed_out_job(runtime, make_routine, gates) -> None:
    gate = gates.new()
    flow = Flow("hangs")
    flow.add_routine(make_routine(logic=lambda *a: gate.wait(WAIT)), "hang")
    state = runtime.run(flow, timeout=0.1)
    assert state.status == "failed"
    assert isinstance(state.error, JobTimeoutError)


def test_a_job_that_finishes_in_time_is_not_timed_out(runtime, make_routine) -> None:
    flow = Flow("fast")
    flow.add_routine(make_routine(logic=lambda *a: time.sleep(0.01)), "fast")
    state = runtime.run(flow, timeout=0.2)
    assert state.status == "completed"
    assert state.error is None
    # the timeout timer must not fire later and rewrite a finished job
    witness = Flow("witness")
    witness.add_routine(make_routine(logic=lambda *a: time.sleep(0.25)), "slow")
    assert runtime.run(witness, timeout=WAIT).status == "completed"
    assert state.status == "completed" and state.error is None


def test_cancel_keeps_the_data_of_activations_still_queued(make_runtime, make_routine, gates):
    """Data already taken by an activation that never got a worker is not lost."""
    gate = gates.new()
    started = threading.Event()
    runtime = make_runtime(thread_pool_size=1)
    flow = Flow("queued")

    def hold(slot_data, message, job_state):
        started.set()
        gate.wait(WAIT)

    flow.add_routine(make_routine(["trigger"], [], hold), "slow")
    flow.add_routine(make_routine(["trigger"], [], lambda *a: None), "fast")
    state = runtime.exec(flow, {"order": 42})
    assert started.wait(WAIT)  # 'slow' holds the only worker; 'fast' waits in the queue
    assert runtime.cancel_job(state.job_id)
    gate.set()
    assert state.status == "cancelled"
    assert state.unconsumed == {"fast": {"trigger": [{"order": 42}]}}


def test_cancel_during_a_retry_wait_keeps_the_data(runtime, make_routine):
    from routilux_kernel import ErrorHandler, ErrorStrategy

    failed = threading.Event()

    def fail(slot_data, message, job_state):
        failed.set()
        raise ConnectionError("down")

    routine = make_routine(["trigger"], [], fail)
    routine.set_error_handler(ErrorHandler(ErrorStrategy.RETRY, max_retries=3, retry_delay=5.0))
    flow = Flow("retry_wait")
    flow.add_routine(routine, "caller")
    state = runtime.exec(flow, {"order": 42})
    assert failed.wait(WAIT)
    deadline = time.monotonic() + WAIT
    while not any(kind == "error" for _, _, kind, _ in list(state.history)):
        # the error is recorded once the retry is scheduled (a poll, not a hidden race)
        assert time.monotonic() < deadline
        time.sleep(0.005)
    assert runtime.cancel_job(state.job_id)
    assert state.unconsumed == {"caller": {"trigger": [{"order": 42}]}}


def test_an_error_raised_after_the_job_ended_is_kept_in_history(runtime, make_routine, gates):
    gate = gates.new()
    started = threading.Event()

    def fail_late(slot_data, message, job_state):
        started.set()
        gate.wait(WAIT)
        raise RuntimeError("too late")

    flow = Flow("late_error")
    flow.add_routine(make_routine(["trigger"], [], fail_late), "late")
    state = runtime.exec(flow)
    assert started.wait(WAIT)
    assert runtime.cancel_job(state.job_id)
    gate.set()
    assert runtime.wait_until_all_jobs_finished(timeout=WAIT)
    deadline = time.monotonic() + WAIT
    while not [entry for entry in list(state.history) if entry[2] == "error_after_end"]:
        assert time.monotonic() < deadline  # the cancelled logic returns in the background
        time.sleep(0.005)
    (entry,) = [entry for entry in state.history if entry[2] == "error_after_end"]
    assert entry[1] == "late" and "too late" in entry[3]
    assert state.status == "cancelled" and state.errors == []
