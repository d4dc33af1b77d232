"""The remote protocol on a loopback executor: pickled like a process, run on a thread.

The loopback executor is the smallest executor with ``in_process=False``: everything an
activation takes and gives back crosses ``dumps``/``loads``, so these tests cover the protocol
(snapshot, recorded writes and emits, replay, errors) without process start-up costs.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from routilux_kernel import (
    ExecutionStatus,
    Executor,
    ExecutorCapabilities,
    Flow,
    JobState,
    RoutineError,
    Runtime,
    SlotFullError,
    hookimpl,
)
from routilux_kernel.activation_policies import custom
from routilux_kernel.executors.remote import dumps, loads, pickling_problems, run_remote_activation

WAIT = 10.0


class LoopbackExecutor(Executor):
    """Pickles each call and its result, and runs it on one thread."""

    name = "loopback"
    capabilities = ExecutorCapabilities(in_process=False, pickles=True)

    def __init__(self, max_workers: int | None = None) -> None:
        self._pool = ThreadPoolExecutor(max_workers or 2, thread_name_prefix="loopback")
        self.calls = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        self.calls += 1
        payload = dumps((fn, args))

        def run() -> Any:
            call, call_args = loads(payload)
            return loads(dumps(call(*call_args)))

        return self._pool.submit(run)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait)


class LoopbackPlugin:
    @hookimpl
    def register_executors(self, register: Callable[..., None]) -> None:
        register("loopback", LoopbackExecutor)


@pytest.fixture
def loopback_runtime(make_runtime: Callable[..., Runtime]) -> Runtime:
    return make_runtime(executor="loopback", plugins=[LoopbackPlugin()])


def single(make_routine, logic, flow_id="single", **routine_options) -> Flow:
    flow = Flow(flow_id)
    flow.add_routine(make_routine(logic=logic, **routine_options), "only")
    return flow


def test_every_shared_data_write_is_replayed_on_the_driver(loopback_runtime, make_routine):
    def logic(slot_data, message, job_state):
        data = job_state.shared_data
        data["a"] = 1
        data.update(b=2, c=3)
        data |= {"d": 4}
        data.setdefault("e", 5)
        data.setdefault("a", 99)  # present: no write
        del data["b"]
        assert data.pop("c") == 3
        assert data.pop("missing", "fallback") == "fallback"
        job_state.shared_data["seen_in_worker"] = dict(data)

    state = loopback_runtime.run(single(make_routine, logic), timeout=WAIT)

    assert state.status == ExecutionStatus.COMPLETED, state.error
    expected = {"a": 1, "d": 4, "e": 5}
    assert state.shared_data == {**expected, "seen_in_worker": expected}


def test_reads_see_the_snapshot_taken_at_dispatch(loopback_runtime, make_routine):
    def logic(slot_data, message, job_state):
        seen = {
            "data": dict(job_state.shared_data),
            "log": list(job_state.shared_log),
            "state": job_state.get_routine_state("only"),
            "routine_id": job_state.current_routine_id,
            "job_id": job_state.job_id,
        }
        job_state.update_routine_state("only", {"runs": seen["state"]["runs"] + 1})
        job_state.shared_data["seen"] = seen

    flow = single(make_routine, logic)
    resumed = JobState("single")  # a saved job, resumed: its state is what the worker reads
    resumed.shared_data["k"] = "v"
    resumed.shared_log.append("old")
    resumed.update_routine_state("only", {"runs": 4})

    state = loopback_runtime.run(flow, job_state=resumed, timeout=WAIT)

    assert state.status == ExecutionStatus.COMPLETED, state.error
    assert state.shared_data["seen"] == {
        "data": {"k": "v"},
        "log": ["old"],
        "state": {"runs": 4},
        "routine_id": "only",
        "job_id": state.job_id,
    }
    assert state.get_routine_state("only") == {"runs": 5}


def test_job_state_attributes_a_worker_cannot_have_are_refused_clearly(
    loopback_runtime, make_routine
):
    def logic(slot_data, message, job_state):
        job_state.errors  # noqa: B018 - driver-side bookkeeping, not in the snapshot

    state = loopback_runtime.run(single(make_routine, logic), timeout=WAIT)

    assert state.error.error_type == "AttributeError"
    assert "job_state.errors is not available to logic on a remote executor" in str(state.error)


def test_shared_log_is_append_only_remotely(loopback_runtime, make_routine):
    def logic(slot_data, message, job_state):
        job_state.shared_log.append(1)
        job_state.shared_log += [2, 3]
        job_state.shared_log.pop()

    state = loopback_runtime.run(single(make_routine, logic), timeout=WAIT)

    assert state.status == ExecutionStatus.FAILED
    assert isinstance(state.error, RoutineError) and state.error.error_type == "TypeError"
    assert "append and extend only" in state.error.message
    assert state.shared_log == [1, 2, 3]  # the writes before the refused one still apply


def test_a_full_slot_during_replay_fails_the_activation_and_stops_the_replay(
    loopback_runtime, make_routine
):
    gate = threading.Event()

    def flood(slot_data, message, job_state):
        for n in range(3):
            source.emit("out", n=n)
        job_state.shared_data["after_flood"] = True

    source = make_routine(logic=flood)
    sink = make_routine(slots=["in"], events=[], logic=lambda *_: None, max_queue_length=1)
    # A custom policy that never activates keeps the sink's slot full; it lives only on the
    # driver (policies are not shipped), so a threading.Event in it is fine.
    sink.set_activation_policy(custom(lambda slots, job_state: (gate.is_set(), {}, None)))
    flow = Flow("overflow")
    flow.add_routine(source, "source")
    flow.add_routine(sink, "sink")
    flow.connect("source", "out", "sink", "in")

    state = loopback_runtime.run(flow, timeout=WAIT)

    assert state.status == ExecutionStatus.FAILED
    assert isinstance(state.error, SlotFullError)
    assert state.error_routine_id == "source"
    assert "after_flood" not in state.shared_data
    assert state.unconsumed["sink"] == {"in": [{"n": 0}]}  # only the first emit landed


def test_remote_logic_cannot_emit_for_another_routine(loopback_runtime, make_routine):
    other = make_routine(logic=lambda *_: None)

    def logic(slot_data, message, job_state):
        other.emit("out", x=1)

    flow = single(make_routine, logic)
    flow.add_routine(other, "other")
    state = loopback_runtime.run(flow, entry_routine_id="only", timeout=WAIT)

    assert state.status == ExecutionStatus.FAILED
    assert "only its own routine's events" in str(state.error)


def test_the_worker_function_never_raises_and_names_the_routine_it_could_not_load():
    outcome = loads(run_remote_activation("ghost", b"not a pickle"))
    ops, error = outcome
    assert ops == []
    assert isinstance(error, RoutineError)
    assert "routine 'ghost' could not be unpickled in the worker" in error.message


def test_routine_errors_carry_the_class_hierarchy_by_name(loopback_runtime, make_routine):
    def logic(slot_data, message, job_state):
        raise ConnectionResetError("peer went away")

    state = loopback_runtime.run(single(make_routine, logic), timeout=WAIT)

    error = state.error
    assert isinstance(error, RoutineError)
    assert error.error_type == "ConnectionResetError"
    assert "builtins.ConnectionError" in error.error_mro
    assert "ConnectionResetError: peer went away" in error.remote_traceback


def test_policies_and_error_handlers_stay_on_the_driver(loopback_runtime, make_routine):
    lock = threading.Lock()

    def policy(slots, job_state):
        with lock:  # a lock in the policy is fine: policies are never pickled
            return slots.any_ready(), slots.take_all(), "from-policy"

    def logic(slot_data, message, job_state):
        job_state.shared_data["message"] = message

    flow = single(make_routine, logic, policy=custom(policy))
    assert pickling_problems(flow.routines["only"], "only") == []

    state = loopback_runtime.run(flow, timeout=WAIT)

    assert state.status == ExecutionStatus.COMPLETED, state.error
    assert state.shared_data == {"message": "from-policy"}


_gates: dict[str, threading.Event] = {}


def gate(name: str) -> threading.Event:
    """A module-level lookup: logic that calls it pickles a reference, not the Event."""
    return _gates.setdefault(name, threading.Event())


def test_an_activation_of_a_closed_job_is_not_sent(loopback_runtime, make_routine):
    release = gate("closing")
    executor = loopback_runtime.executor("loopback")

    def slow(slot_data, message, job_state):
        gate("closing").wait(WAIT)
        for n in range(5):
            source.emit("out", n=n)

    source = make_routine(logic=slow)
    sink = make_routine(slots=["in"], events=[], logic=lambda *_: None)
    flow = Flow("closing")
    flow.add_routine(source, "source")
    flow.add_routine(sink, "sink")
    flow.connect("source", "out", "sink", "in")

    state = loopback_runtime.exec(flow)
    assert loopback_runtime.cancel_job(state.job_id)
    release.set()
    loopback_runtime.shutdown(wait=True)

    assert state.status == ExecutionStatus.CANCELLED
    assert executor.calls == 1  # the emits after the cancel reached no worker
    assert [h[2] for h in state.history].count("emit_after_end") == 5


def test_retry_limited_to_an_exception_class_matches_remote_errors_by_name(
    loopback_runtime, make_routine
):
    from routilux_kernel import ErrorHandler, ErrorStrategy

    def flaky(slot_data, message, job_state):
        # The routine is pickled per activation, so the count lives in the job state.
        tries = job_state.get_routine_state("flaky", {}).get("tries", 0) + 1
        job_state.update_routine_state("flaky", {"tries": tries})
        if tries < 3:
            raise ConnectionResetError("try again")  # a subclass of ConnectionError

    routine = make_routine(["trigger"], [], flaky)
    routine.set_error_handler(
        ErrorHandler(
            ErrorStrategy.RETRY,
            max_retries=3,
            retry_delay=0.01,
            retryable_exceptions=(ConnectionError,),
        )
    )
    flow = Flow("remote_retry")
    flow.add_routine(routine, "flaky")
    state = loopback_runtime.run(flow, timeout=10)
    assert state.status == "completed", state.error
    assert state.get_routine_state("flaky") == {"tries": 3}


def test_a_routine_is_sent_while_another_thread_is_still_importing_loguru(
    loopback_runtime, make_routine, monkeypatch
):
    # Mid-import, sys.modules holds loguru's module before it defines its Logger class; the
    # pickler must not take that for a broken routine (it once refused the activation).
    import types

    from routilux_kernel.executors import pickling

    monkeypatch.setattr(pickling, "_logger_class", None)  # as before any logger was seen
    monkeypatch.setitem(sys.modules, "loguru._logger", types.ModuleType("loguru._logger"))

    def logic(slot_data, policy_message, job_state):
        job_state.shared_data["ran"] = True

    state = loopback_runtime.run(single(make_routine, logic), {}, timeout=WAIT)

    assert state.status == ExecutionStatus.COMPLETED, state.errors
    assert state.shared_data == {"ran": True}
