"""The ``process`` executor: results, errors, crashes, cancel, pre-flight, hooks and shutdown."""

from __future__ import annotations

import ctypes
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from routilux_kernel import (
    ErrorHandler,
    ErrorStrategy,
    ExecutionStatus,
    Flow,
    FlowValidationError,
    RoutineError,
    Runtime,
    hookimpl,
)
from routilux_kernel.executors.process.pool import ProcessExecutor
from routilux_kernel.executors.remote import WorkerCrashedError, pickling_problems

WAIT = 10.0


def wait_for_file(path: Path, timeout: float = WAIT) -> None:
    """Block until a worker process has written ``path`` (a cross-process handshake)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} was never written")
        time.sleep(0.01)


def process_runtime(make_runtime: Callable[..., Runtime], workers: int = 2, **kw: Any) -> Runtime:
    return make_runtime(thread_pool_size=workers, executor="process", **kw)


@hookimpl
def worker_setup(worker: Any) -> None:
    """Used as a worker plugin (this module's name is passed as ``worker_plugins``)."""
    os.environ["ROUTILUX_TEST_WORKER"] = f"{worker.executor}:{worker.name}:{worker.pid}"


# -- results -------------------------------------------------------------------------------


def test_a_chain_runs_in_workers_and_its_writes_reach_the_job(make_runtime, make_routine):
    offset = 10  # captured by the closure below: closures travel by value

    def produce(slot_data, message, job_state):
        job_state.shared_data["producer_pid"] = os.getpid()
        for n in range(3):
            job_state.routine_states  # noqa: B018 - reading is allowed
            job_state.shared_data.update({f"n{n}": n + offset})
        job_state.get_routine_state("producer", {})
        job_state.update_routine_state(job_state.current_routine_id, {"made": 3})
        job_state.shared_log.extend(["a", "b"])
        source.emit("out", value=offset)

    def consume(slot_data, message, job_state):
        values = [item["value"] for item in slot_data["in"]]
        job_state.shared_log.append(("got", values))
        job_state.update_routine_state("consumer", {"pid": os.getpid(), "total": sum(values)})

    source = make_routine(logic=produce)
    sink = make_routine(slots=["in"], events=[], logic=consume)
    flow = Flow("chain")
    flow.add_routine(source, "producer")
    flow.add_routine(sink, "consumer")
    flow.connect("producer", "out", "consumer", "in")

    state = process_runtime(make_runtime).run(flow, timeout=WAIT)

    assert state.status == ExecutionStatus.COMPLETED, state.error
    assert state.shared_data["producer_pid"] != os.getpid()
    assert {state.shared_data[f"n{n}"] for n in range(3)} == {10, 11, 12}
    assert state.shared_log == ["a", "b", ("got", [10])]
    assert state.get_routine_state("producer") == {"made": 3}
    consumer = state.get_routine_state("consumer")
    assert consumer["total"] == 10 and consumer["pid"] != os.getpid()


def test_writes_and_emits_are_applied_in_the_order_logic_made_them(make_runtime, make_routine):
    def produce(slot_data, message, job_state):
        job_state.shared_log.append(1)
        source.emit("out", n=1)
        job_state.shared_log.append(2)
        source.emit("out", n=2)

    def observe(slot_data, message, job_state):
        for item in slot_data["in"]:
            # The snapshot is taken when this activation is dispatched, during the replay.
            job_state.update_routine_state("observer", {item["n"]: list(job_state.shared_log)})

    source = make_routine(logic=produce)
    observer = make_routine(slots=["in"], events=[], logic=observe)
    flow = Flow("ordered")
    flow.add_routine(source, "source")
    flow.add_routine(observer, "observer")
    flow.connect("source", "out", "observer", "in")

    state = process_runtime(make_runtime).run(flow, timeout=WAIT)

    assert state.status == ExecutionStatus.COMPLETED, state.error
    assert state.get_routine_state("observer") == {1: [1], 2: [1, 2]}
    assert state.shared_log == [1, 2]


def test_many_concurrent_jobs_on_two_workers(make_runtime, make_routine):
    def square(slot_data, message, job_state):
        x = slot_data["trigger"][0]["x"]
        job_state.shared_data["square"] = x * x

    flow = Flow("squares")
    flow.add_routine(make_routine(logic=square), "square")
    runtime = process_runtime(make_runtime)
    states = [runtime.exec(flow, {"x": x}) for x in range(30)]
    assert runtime.wait_until_all_jobs_finished(WAIT)
    assert [s.shared_data.get("square") for s in states] == [x * x for x in range(30)]
    assert runtime.executor("process").max_workers == 2


# -- errors --------------------------------------------------------------------------------


def test_an_exception_comes_back_as_a_routine_error_with_the_remote_traceback(
    make_runtime, make_routine
):
    class Unrebuildable(Exception):
        def __init__(self, code: int, detail: str) -> None:  # needs 2 args: will not unpickle
            super().__init__(f"code {code}: {detail}")

    def explode_deep_inside(job_state):
        job_state.shared_data["before"] = True
        raise Unrebuildable(7, "bad input")

    def logic(slot_data, message, job_state):
        explode_deep_inside(job_state)

    flow = Flow("failing")
    flow.add_routine(make_routine(logic=logic), "fragile")

    state = process_runtime(make_runtime).run(flow, timeout=WAIT)

    assert state.status == ExecutionStatus.FAILED
    assert state.error_routine_id == "fragile"
    error = state.error
    assert isinstance(error, RoutineError)
    assert error.error_type.endswith("Unrebuildable")
    assert error.message == "code 7: bad input"
    assert "explode_deep_inside" in error.remote_traceback
    assert "code 7: bad input" in error.remote_traceback
    assert state.shared_data == {"before": True}  # writes made before the raise still apply


def test_retry_reruns_a_failed_remote_activation(make_runtime, make_routine, tmp_path):
    attempts = tmp_path / "attempts"

    def flaky(slot_data, message, job_state):
        with attempts.open("a") as handle:
            handle.write("x")
        if len(attempts.read_text()) < 3:
            raise ConnectionError("not yet")
        job_state.shared_data["done"] = True

    routine = make_routine(logic=flaky)
    routine.set_error_handler(
        ErrorHandler(ErrorStrategy.RETRY, max_retries=3, retry_delay=0.01, retry_backoff=1.0)
    )
    flow = Flow("flaky")
    flow.add_routine(routine, "flaky")

    state = process_runtime(make_runtime).run(flow, timeout=WAIT)

    assert state.status == ExecutionStatus.COMPLETED, state.error
    assert state.shared_data == {"done": True}
    assert attempts.read_text() == "xxx"
    assert [h[2] for h in state.history if h[2] == "retry"] == ["retry", "retry"]


def test_data_that_cannot_be_pickled_fails_the_activation_naming_the_routine(
    make_runtime, make_routine
):
    def logic(slot_data, message, job_state):
        job_state.shared_log.append("kept")
        source.emit("out", lock=threading.Lock())

    source = make_routine(logic=logic)
    flow = Flow("unpicklable-emit")
    flow.add_routine(source, "leaky")

    state = process_runtime(make_runtime).run(flow, timeout=WAIT)

    assert state.status == ExecutionStatus.FAILED
    assert "'leaky'" in str(state.error) and "emit('out')" in str(state.error)
    assert state.shared_log == ["kept"]


# -- crashed workers -----------------------------------------------------------------------


def _segfault() -> None:
    ctypes.string_at(0)


@pytest.mark.parametrize(
    ("crash", "expected"),
    [(lambda: os._exit(3), "exited with code 3"), (_segfault, "exited with code -11 (SIGSEGV)")],
    ids=["os._exit", "segfault"],
)
def test_a_dying_worker_fails_only_its_activation_and_the_pool_recovers(
    make_runtime, make_routine, crash, expected
):
    def logic(slot_data, message, job_state):
        if slot_data["trigger"][0]["crash"]:
            crash()
        time.sleep(0.3)  # keeps the healthy job running on the other worker meanwhile
        job_state.shared_data["pid"] = os.getpid()

    flow = Flow("crashy")
    flow.add_routine(make_routine(logic=logic), "victim")
    runtime = process_runtime(make_runtime)

    healthy = runtime.exec(flow, {"crash": False})
    crashed = runtime.exec(flow, {"crash": True})
    assert runtime.wait_until_all_jobs_finished(WAIT)

    assert healthy.status == ExecutionStatus.COMPLETED, healthy.error
    assert crashed.status == ExecutionStatus.FAILED
    error = crashed.error
    assert isinstance(error, WorkerCrashedError)
    assert expected in str(error)
    assert f"routine 'victim' of job {crashed.job_id}" in str(error)
    assert f"pid {error.pid}" in str(error)
    assert error.pid not in runtime.executor("process").worker_pids

    again = runtime.run(flow, {"crash": False}, timeout=WAIT)
    assert again.status == ExecutionStatus.COMPLETED, again.error


def test_retry_after_a_crash_runs_on_a_fresh_worker(make_runtime, make_routine, tmp_path):
    first_pid = tmp_path / "first-pid"

    def logic(slot_data, message, job_state):
        if not first_pid.exists():
            first_pid.write_text(str(os.getpid()))
            os._exit(1)
        job_state.shared_data["pid"] = os.getpid()

    routine = make_routine(logic=logic)
    routine.set_error_handler(ErrorHandler(ErrorStrategy.RETRY, max_retries=1, retry_delay=0))
    flow = Flow("crash-then-retry")
    flow.add_routine(routine, "phoenix")

    state = process_runtime(make_runtime, workers=1).run(flow, timeout=WAIT)

    assert state.status == ExecutionStatus.COMPLETED, state.error
    assert state.shared_data["pid"] != int(first_pid.read_text())
    assert state.errors == []  # a retried error is history only
    crashes = [h[3] for h in state.history if h[2] == "error"]
    assert len(crashes) == 1 and crashes[0]["error_type"] == "WorkerCrashedError"


def test_workers_that_cannot_start_fail_the_work_with_their_error(make_runtime, make_routine):
    flow = Flow("no-workers")
    flow.add_routine(make_routine(logic=lambda *_: None), "stranded")
    runtime = make_runtime(
        executor="process",
        executor_options={"max_workers": 1, "worker_plugins": ["no_such_plugin_module"]},
    )

    state = runtime.run(flow, timeout=WAIT)

    assert state.status == ExecutionStatus.FAILED
    assert "3 worker processes in a row failed to start" in str(state.error)
    assert "No module named 'no_such_plugin_module'" in str(state.error)
    later = runtime.run(flow, timeout=WAIT)  # refused at once, not hung
    assert later.status == ExecutionStatus.FAILED
    assert "refused routine 'stranded'" in str(later.error)


# -- cancel --------------------------------------------------------------------------------


def test_running_logic_sees_a_cancel_while_it_runs(make_runtime, make_routine, tmp_path):
    started = tmp_path / "started"

    def patient(slot_data, message, job_state):
        started.touch()
        deadline = time.monotonic() + 5
        while not job_state.cancel_requested and time.monotonic() < deadline:
            time.sleep(0.01)
        job_state.shared_data["saw_cancel"] = job_state.cancel_requested

    flow = Flow("cancellable")
    flow.add_routine(make_routine(logic=patient), "patient")
    runtime = process_runtime(make_runtime, workers=1)

    begun = time.monotonic()
    state = runtime.exec(flow)
    wait_for_file(started)
    assert runtime.cancel_job(state.job_id)
    runtime.shutdown(wait=True)  # returns once the worker's outcome was applied

    assert state.status == ExecutionStatus.CANCELLED
    assert state.shared_data == {"saw_cancel": True}
    assert time.monotonic() - begun < 4


def test_cancel_drops_queued_work_and_force_stops_running_work():
    executor = ProcessExecutor(max_workers=1)
    executor.start()
    try:
        running = executor.submit(time.sleep, 30)
        queued = executor.submit(os.getpid)
        deadline = time.monotonic() + WAIT
        while not running.running():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        [pid] = executor.worker_pids

        assert executor.cancel(queued) is True
        assert executor.cancel(running) is False  # cooperative only: it keeps running
        assert executor.cancel(running, force=True) is True
        assert isinstance(running.exception(timeout=WAIT), Exception)
        assert queued.cancelled()

        fresh = executor.submit(os.getpid).result(timeout=WAIT)
        assert fresh != pid
    finally:
        executor.shutdown(wait=True)


def test_shutdown_leaves_no_worker_processes_or_threads(make_routine):
    def logic(slot_data, message, job_state):
        job_state.shared_data["ok"] = True

    flow = Flow("short")
    flow.add_routine(make_routine(logic=logic), "short")
    runtime = Runtime(thread_pool_size=2, executor="process")
    executor = runtime.executor("process")
    states = [runtime.exec(flow) for _ in range(4)]
    assert runtime.wait_until_all_jobs_finished(WAIT)
    pids = executor.worker_pids
    assert pids and all(s.shared_data == {"ok": True} for s in states)

    runtime.shutdown(wait=True)

    assert executor.worker_pids == []
    executor.shutdown(wait=True)  # a second shutdown is harmless
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), f"worker {pid} is still alive"
    leftovers = [t.name for t in threading.enumerate() if t.name.startswith("routilux-process")]
    assert leftovers == []


# -- pre-flight ----------------------------------------------------------------------------


def test_a_routine_holding_a_lock_fails_exec_before_any_work_starts(
    make_runtime, make_routine, tmp_path
):
    ran = tmp_path / "ran"

    def harmless(slot_data, message, job_state):
        ran.touch()

    holder = make_routine(logic=lambda *_: None)
    holder.guard = threading.Lock()
    flow = Flow("locked")
    flow.add_routine(make_routine(logic=harmless), "harmless")
    flow.add_routine(holder, "holder")
    runtime = process_runtime(make_runtime)

    with pytest.raises(FlowValidationError) as caught:
        runtime.exec(flow)

    message = str(caught.value)
    assert "routine 'holder'" in message and "attribute 'guard'" in message
    assert "'harmless'" not in message
    assert runtime.list_jobs() == [] and not ran.exists()


def test_a_socket_captured_by_logic_is_named_by_the_pre_flight_check(make_runtime, make_routine):
    connection = socket.socket()
    try:

        def send(slot_data, message, job_state):
            connection.send(b"ping")

        flow = Flow("socketed")
        flow.add_routine(make_routine(logic=send), "sender")
        with pytest.raises(FlowValidationError, match="closure variable 'connection'"):
            process_runtime(make_runtime).exec(flow)
        problems = pickling_problems(flow.routines["sender"], "sender")
        assert len(problems) == 1 and problems[0].startswith("routine 'sender':")
        assert "socket" in problems[0]
    finally:
        connection.close()


def test_pickling_problems_is_empty_for_a_routine_that_pickles(make_routine):
    routine = make_routine(logic=lambda slot_data, message, job_state: None)
    routine.set_config(retries=3, names=["a", "b"])
    assert pickling_problems(routine, "fine") == []


# -- hooks ---------------------------------------------------------------------------------


def test_routine_hooks_run_on_the_driver_and_worker_setup_runs_in_each_worker(
    make_runtime, make_routine
):
    seen: list[tuple[str, str, int, str | None]] = []

    class Observer:
        @hookimpl
        def routine_started(self, job_state, routine_id):
            seen.append(("started", routine_id, os.getpid(), None))

        @hookimpl
        def routine_finished(self, job_state, routine_id, error):
            seen.append(("finished", routine_id, os.getpid(), type(error).__name__))

    def logic(slot_data, message, job_state):
        job_state.shared_data["setup"] = os.environ.get("ROUTILUX_TEST_WORKER")
        if slot_data["trigger"][0].get("fail"):
            raise KeyError("missing")

    flow = Flow("hooked")
    flow.add_routine(make_routine(logic=logic), "watched")
    runtime = make_runtime(
        executor="process",
        executor_options={"max_workers": 1, "worker_plugins": [__name__]},
        plugins=[Observer()],
    )

    ok = runtime.run(flow, timeout=WAIT)
    failed = runtime.run(flow, {"fail": True}, timeout=WAIT)

    assert ok.status == ExecutionStatus.COMPLETED and failed.status == ExecutionStatus.FAILED
    me = os.getpid()
    assert seen == [
        ("started", "watched", me, None),
        ("finished", "watched", me, "NoneType"),
        ("started", "watched", me, None),
        ("finished", "watched", me, "RoutineError"),
    ]
    executor_name, worker_name, worker_pid = ok.shared_data["setup"].split(":")
    assert executor_name == "process" and worker_name.startswith("process-worker-")
    assert int(worker_pid) != me
