"""Adversarial tests of the remote path: the process executor and the remote protocol.

Workers die at odd moments, jobs are cancelled while outcomes are replayed, the pool runs
out of file descriptors, logic emits the job-state view itself, and many jobs run while
workers are killed under them. Every wait is bounded, so a hang fails instead of blocking.
"""

from __future__ import annotations

import os
import random
import resource
import signal
import statistics
import textwrap
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError
from pathlib import Path
from typing import Any

import pytest

from routilux_kernel import (
    ErrorHandler,
    ErrorStrategy,
    ExecutionStatus,
    Flow,
    FlowValidationError,
    JobState,
    Routine,
    RoutineError,
    Runtime,
    RuntimeShutDownError,
    hookimpl,
)
from routilux_kernel.core.errors import ExecutorError
from routilux_kernel.executors.process.pool import ProcessExecutor
from routilux_kernel.executors.remote import WorkerCrashedError

WAIT = 10.0


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Poll (bounded) for something another process does, such as writing a file."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def open_fds() -> list[str]:
    return sorted(os.listdir("/proc/self/fd"))


def join_pool_threads() -> list[str]:
    """Names of executor threads still alive once those finishing late callbacks ended."""
    for thread in threading.enumerate():
        if thread.name.startswith("routilux-process"):
            thread.join(WAIT)
    return [t.name for t in threading.enumerate() if t.name.startswith("routilux-process")]


def single(logic: Callable[..., Any], routine_id: str = "only", flow_id: str = "single") -> Flow:
    routine = Routine()
    routine.add_slot("trigger")
    routine.set_logic(logic)
    routine.set_executor("process")
    flow = Flow(flow_id)
    flow.add_routine(routine, routine_id)
    return flow


# -- job_run and the done-callback ---------------------------------------------------------


class SlowRoutineStarted:
    """A monitoring plugin whose ``routine_started`` is slow: the worker finishes first."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    @hookimpl
    def routine_started(self, job_state: JobState, routine_id: str) -> None:
        if not self.marker.exists():
            wait_for(self.marker.exists, "the worker to run the logic")
            time.sleep(0.2)  # the worker's reply arrives meanwhile


def test_cancel_during_a_retry_wait_keeps_the_data_when_the_outcome_came_back_at_once(
    make_runtime, tmp_path
):
    """The done-callback (error, retry scheduled) ran inside ``submit_remote``; the retry
    waits on a timer, so a cancel must put the activation's data back in ``unconsumed``."""
    ran = tmp_path / "ran"

    def fail(slot_data, message, job_state):
        ran.touch()
        raise ValueError("try again later")

    flow = single(fail, "caller")
    flow.routines["caller"].set_error_handler(
        ErrorHandler(ErrorStrategy.RETRY, max_retries=3, retry_delay=5.0)
    )
    runtime = make_runtime(thread_pool_size=1, plugins=[SlowRoutineStarted(ran)])

    state = runtime.exec(flow, {"order": 42})
    wait_for(lambda: any(entry[2] == "error" for entry in list(state.history)), "the error")
    assert runtime.cancel_job(state.job_id)

    assert state.status == ExecutionStatus.CANCELLED
    assert state.unconsumed == {"caller": {"trigger": [{"order": 42}]}}


class SlowReplay:
    """Blocks the driver-side replay of one emit of routine ``a`` until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    @hookimpl
    def event_emitted(self, job_state: JobState, routine_id: str, event: str, data: dict) -> None:
        if routine_id == "a" and data.get("run") == 1:
            self.entered.set()
            self.release.wait(WAIT)


def test_a_job_is_not_resumed_while_an_outcome_of_its_cancelled_run_is_still_applied(
    make_runtime, tmp_path
):
    """A remote future is done before its done-callback has replayed the outcome; until
    then the cancelled run still writes into the JobState a resume would reuse."""
    replay = SlowReplay()

    def remote(routine_id: str, lingers: float) -> Routine:
        def logic(slot_data, message, job_state):
            run = slot_data["in"][0]["run"]
            if run == 1:
                (tmp_path / routine_id).touch()
                deadline = time.monotonic() + WAIT
                while not job_state.cancel_requested and time.monotonic() < deadline:
                    time.sleep(0.01)
                time.sleep(lingers)
            routine.emit("out", run=run)
            job_state.shared_data[f"{routine_id}_run"] = run

        routine = Routine()
        routine.add_slot("in")
        routine.add_event("out")
        routine.set_logic(logic)
        routine.set_executor("process")
        return routine

    source = Routine()
    source.add_slot("trigger")
    source.add_event("out")
    source.set_logic(lambda slot_data, m, s: source.emit("out", run=slot_data["trigger"][0]["run"]))
    flow = Flow("fan_out_remote")
    flow.add_routine(source, "src")
    for routine_id, lingers in (("a", 0.0), ("b", 0.3)):  # b returns after a's reply
        flow.add_routine(remote(routine_id, lingers), routine_id)
        flow.connect("src", "out", routine_id, "in")
    runtime = make_runtime(thread_pool_size=2, plugins=[replay])

    state = runtime.exec(flow, {"run": 1})
    wait_for(lambda: (tmp_path / "a").exists() and (tmp_path / "b").exists(), "a and b to run")
    assert runtime.cancel_job(state.job_id)
    resumed_early = None
    try:
        assert replay.entered.wait(WAIT)  # a's outcome is being applied, on hold
        wait_for(lambda: state.shared_data.get("b_run") == 1, "b's outcome")
        # b's activation ends just after its outcome is applied; keep trying meanwhile.
        deadline = time.monotonic() + 1.0
        while resumed_early is None and time.monotonic() < deadline:
            try:
                resumed_early = runtime.exec(flow, {"run": 2}, job_state=state)
            except ValueError as refused:
                assert "still running" in str(refused)
                time.sleep(0.01)
    finally:
        replay.release.set()
    assert resumed_early is None, "resumed while the cancelled run still wrote into the job"
    wait_for(lambda: state.shared_data.get("a_run") == 1, "a's replay to end")
    resumed = None
    deadline = time.monotonic() + WAIT
    while resumed is None:  # the claim is released right after the replay
        try:
            resumed = runtime.exec(flow, {"run": 2}, job_state=state)
        except ValueError:
            assert time.monotonic() < deadline, "the job never became resumable"
            time.sleep(0.01)
    assert resumed.wait(WAIT)
    assert state.status == ExecutionStatus.COMPLETED, state.error
    assert state.shared_data == {"a_run": 2, "b_run": 2}


# -- the process pool ----------------------------------------------------------------------


def test_no_file_descriptor_for_a_new_worker_fails_the_work_instead_of_hanging(
    make_runtime, tmp_path
):
    """A worker dies while another task waits and the process is out of file descriptors:
    the dispatcher cannot start a replacement, yet both activations must end."""
    flag = tmp_path / "alive"
    started = tmp_path / "started"
    flag.touch()

    def logic(slot_data, message, job_state):
        if slot_data["trigger"][0].get("crash"):
            started.touch()
            while flag.exists():
                time.sleep(0.005)
            os._exit(3)
        job_state.shared_data["ran"] = True

    flow = single(logic)
    runtime = make_runtime(thread_pool_size=1)
    crashing = runtime.exec(flow, {"crash": True})
    waiting = runtime.exec(flow, {})  # queued behind it: one worker
    wait_for(started.exists, "the first activation to start")

    taken = {int(fd) for fd in os.listdir("/proc/self/fd")}
    lowest_free = min(fd for fd in range(3, 1 << 16) if fd not in taken)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))
    try:
        flag.unlink()  # the worker dies; starting the next one needs new descriptors
        ended = crashing.wait(5) and waiting.wait(5)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert ended, "a future was never completed: the job hangs forever"
    assert isinstance(crashing.error, WorkerCrashedError)
    assert waiting.status in (ExecutionStatus.COMPLETED, ExecutionStatus.FAILED)
    if waiting.status == ExecutionStatus.FAILED:
        assert "could not be started" in str(waiting.error) or "Too many open files" in str(
            waiting.error
        )
    again = runtime.run(flow, {}, timeout=WAIT)  # descriptors are back: the pool recovers
    assert again.status == ExecutionStatus.COMPLETED, again.error


def test_force_cancel_never_kills_the_task_that_follows_on_the_same_worker():
    """Probabilistic: a force-cancel that lands as its task finishes must not kill the next
    task the dispatcher gives that worker, nor report True and deliver the result anyway."""
    executor = ProcessExecutor(max_workers=1)
    executor.start()
    try:
        executor.submit(os.getpid).result(timeout=WAIT)
        round_trips = []
        for _ in range(5):
            begun = time.monotonic()
            executor.submit(time.sleep, 0.002).result(timeout=WAIT)
            round_trips.append(time.monotonic() - begun)
        rtt = statistics.median(round_trips)
        kills = 0
        deadline = time.monotonic() + 3.0
        while kills < 25 and time.monotonic() < deadline:
            first = executor.submit(time.sleep, 0.002)
            second = executor.submit(os.getpid)
            time.sleep(random.uniform(0.5 * rtt, 1.3 * rtt))
            stopped = executor.cancel(first, force=True)
            kills += stopped
            second.result(timeout=WAIT)  # raises WorkerCrashedError when the kill hit it
            if stopped:
                with pytest.raises((CancelledError, ExecutorError)):
                    first.result(timeout=WAIT)
            else:
                first.result(timeout=WAIT)
    finally:
        executor.shutdown(wait=True)


def test_hundred_jobs_with_randomly_dying_workers_all_complete_with_exact_data(make_routine):
    """About one activation in ten kills its worker: at once, or a moment later (while
    emitting, replying, idle between tasks, or in its next task). Under RETRY every job
    completes with all its data, repeated only by attempts whose worker died after they
    emitted; afterwards no worker, thread or descriptor is left."""
    jobs, items = 100, 3
    source = make_routine(["trigger"], ["item"])

    def emit_items(slot_data, message, job_state):
        key = slot_data["trigger"][0]["key"]
        for i in range(items):
            source.emit("item", key=key, i=i)

    def square(slot_data, message, job_state):
        time.sleep(random.uniform(0, 0.003))
        roll = random.random()
        if roll < 0.05:
            os._exit(7)
        if roll < 0.10:
            delay = random.uniform(0, 0.01)
            threading.Timer(delay, os.kill, (os.getpid(), signal.SIGKILL)).start()
        batch = slot_data["in"]
        seen = job_state.get_routine_state("work", {}).get("seen", 0)
        job_state.update_routine_state("work", {"seen": seen + len(batch)})
        for item in batch:
            work.emit("done", key=item["key"], i=item["i"], sq=item["i"] ** 2, pid=os.getpid())

    def collect(slot_data, message, job_state):
        for item in slot_data["in"]:
            job_state.shared_log.append((item["key"], item["i"], item["sq"]))
            job_state.shared_data.setdefault("pids", set()).add(item["pid"])

    source.set_logic(emit_items)
    work = make_routine(["in"], ["done"], square)
    work.set_executor("process")
    work.set_error_handler(ErrorHandler(ErrorStrategy.RETRY, max_retries=50, retry_delay=0))
    flow = Flow("dying_workers")
    flow.add_routine(source, "src")
    flow.add_routine(work, "work")
    flow.add_routine(make_routine(["in"], [], collect), "sink")
    flow.connect("src", "item", "work", "in")
    flow.connect("work", "done", "sink", "in")

    fds = open_fds()
    runtime = Runtime(thread_pool_size=2)
    executor = runtime.executor("process")
    try:
        states = [runtime.exec(flow, {"key": n}) for n in range(jobs)]
        assert runtime.wait_until_all_jobs_finished(60), "some job never finished"
        pids = set(executor.worker_pids)
    finally:
        runtime.shutdown(wait=True, timeout=WAIT)

    crashes = 0
    for n, state in enumerate(states):
        assert state.status == ExecutionStatus.COMPLETED, (n, state.error)
        expected = [(n, i, i * i) for i in range(items)]
        failed = sum(1 for entry in state.history if entry[2] == "error")
        seen = state.get_routine_state("work")["seen"]
        if failed == 0:
            assert sorted(state.shared_log) == expected
            assert seen == items
        else:  # emits streamed by an attempt before its worker died stay delivered
            assert sorted(set(state.shared_log)) == expected
            assert len(state.shared_log) <= items * (1 + failed)
            assert items <= seen <= items * (1 + failed)
        pids |= state.shared_data["pids"]
        crashes += failed
    assert crashes > 0  # the randomness did kill workers
    assert [pid for pid in pids if Path(f"/proc/{pid}").exists()] == []
    assert executor.worker_pids == []
    assert join_pool_threads() == []
    assert open_fds() == fds


def test_shutdown_without_wait_while_threads_keep_submitting_jobs():
    def logic(slot_data, message, job_state):
        time.sleep(random.uniform(0, 0.03))
        job_state.shared_data["pid"] = os.getpid()

    flow = single(logic)
    fds = open_fds()
    runtime = Runtime(thread_pool_size=2)
    executor = runtime.executor("process")
    states: list[JobState] = []
    stop = threading.Event()

    def feed() -> None:
        while not stop.is_set():
            try:
                states.append(runtime.exec(flow))
            except RuntimeShutDownError:
                return
            time.sleep(0.003)

    feeders = [threading.Thread(target=feed) for _ in range(3)]
    for feeder in feeders:
        feeder.start()
    wait_for(lambda: len(states) > 30 and len(executor.worker_pids) == 2, "jobs on two workers")
    pids = set(executor.worker_pids)
    runtime.shutdown(wait=False)
    stop.set()
    for feeder in feeders:
        feeder.join(WAIT)

    assert all(state.wait(WAIT) for state in states), "a job never ended"
    for state in states:
        assert state.status in (ExecutionStatus.COMPLETED, ExecutionStatus.CANCELLED)
        if state.status == ExecutionStatus.COMPLETED:
            assert state.shared_data["pid"] in pids
    assert [pid for pid in pids if Path(f"/proc/{pid}").exists()] == []
    assert executor.worker_pids == []
    assert join_pool_threads() == []
    assert open_fds() == fds


def test_shutdown_does_not_wait_for_a_thread_that_logic_left_running_in_a_worker():
    """A worker told to stop must exit even though a non-daemon thread of logic lives on."""

    def logic(slot_data, message, job_state):
        threading.Thread(target=time.sleep, args=(3600,), name="forgotten").start()
        job_state.shared_data["pid"] = os.getpid()

    runtime = Runtime(thread_pool_size=1)
    state = runtime.run(single(logic), timeout=WAIT)
    assert state.status == ExecutionStatus.COMPLETED, state.error
    closer = threading.Thread(target=runtime.shutdown, daemon=True)
    closer.start()
    closer.join(5)
    assert not closer.is_alive(), "shutdown waits for a thread the worker's logic started"
    assert not Path(f"/proc/{state.shared_data['pid']}").exists()


def test_shutdown_with_queued_work_returns_when_no_worker_can_start():
    """shutdown(wait=True) waits for queued tasks; workers that die during setup must still
    end in the "failed to start" error, not be respawned forever."""
    executor = ProcessExecutor(max_workers=1, worker_plugins=["no_such_module_for_shutdown"])
    future = executor.submit(os.getpid)
    closer = threading.Thread(target=executor.shutdown, daemon=True)
    closer.start()
    closer.join(WAIT)
    if closer.is_alive():
        with executor._lock:  # stop the respawning, so later tests do not pay for it
            executor._broken = "given up by the test"
        pytest.fail("shutdown(wait=True) never returned: workers are started over and over")
    with pytest.raises(ExecutorError, match="failed to start"):
        future.result(timeout=WAIT)


def test_large_payloads_travel_both_ways_while_other_jobs_keep_running(make_runtime):
    size = 20_000_000

    def reverse(slot_data, message, job_state):
        blob = slot_data["trigger"][0]["blob"]
        job_state.shared_data["got"] = len(blob)
        big.emit("out", blob=blob[::-1])

    def measure(slot_data, message, job_state):
        blob = slot_data["in"][0]["blob"]
        job_state.shared_data["back"] = (len(blob), blob[:1], blob[-1:])

    big = Routine()
    big.add_slot("trigger")
    big.add_event("out")
    big.set_logic(reverse)
    big.set_executor("process")
    sink = Routine()
    sink.add_slot("in")
    sink.set_logic(measure)
    sink.set_executor("process")
    flow = Flow("large")
    flow.add_routine(big, "big")
    flow.add_routine(sink, "sink")
    flow.connect("big", "out", "sink", "in")
    small = single(lambda slot_data, m, state: state.shared_data.update(pid=os.getpid()))
    runtime = make_runtime(thread_pool_size=2)

    heavy = runtime.exec(flow, {"blob": b"a" + b"x" * (size - 2) + b"z"})
    light = [runtime.exec(small) for _ in range(5)]
    assert all(state.wait(WAIT) for state in [*light, heavy])
    assert all(state.status == ExecutionStatus.COMPLETED for state in light)
    assert heavy.status == ExecutionStatus.COMPLETED, heavy.error
    assert heavy.shared_data == {"got": size, "back": (size, b"z", b"a")}


def test_workers_that_die_during_setup_a_few_times_do_not_lose_queued_work(
    make_runtime, tmp_path, monkeypatch
):
    """Two workers in a row die in ``worker_setup`` (no "failed" message, just gone); the
    third starts, and every queued activation still runs exactly once."""
    module = tmp_path / "flaky_worker_setup.py"
    module.write_text(
        textwrap.dedent(
            """
            import os
            from routilux_kernel import hookimpl

            @hookimpl
            def worker_setup(worker):
                with open(os.environ["ROUTILUX_FLAKY_COUNTER"], "a+") as counter:
                    counter.seek(0)
                    starts = len(counter.read())
                    counter.write("x")
                if starts < 2:
                    os._exit(9)
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("ROUTILUX_FLAKY_COUNTER", str(tmp_path / "starts"))

    def double(slot_data, message, job_state):
        job_state.shared_data["x"] = slot_data["trigger"][0]["x"] * 2

    runtime = make_runtime(
        executor="process",
        executor_options={"max_workers": 1, "worker_plugins": ["flaky_worker_setup"]},
    )
    flow = single(double)
    flow.routines["only"].set_executor(None)  # so the runtime's executor options apply
    states = [runtime.exec(flow, {"x": x}) for x in range(10)]
    assert runtime.wait_until_all_jobs_finished(WAIT)
    assert [state.shared_data.get("x") for state in states] == [2 * x for x in range(10)]
    assert (tmp_path / "starts").read_text() == "xxx"


# -- the job-state view and errors in workers ----------------------------------------------


def test_remote_logic_can_emit_the_shared_log_and_data_themselves(make_runtime):
    """Logic passes the view's containers on as data, as it may with the live JobState."""

    def produce(slot_data, message, job_state):
        job_state.shared_log.append("step-1")
        job_state.shared_data["k"] = 1
        producer.emit("out", log=job_state.shared_log, data=job_state.shared_data)
        job_state.update_routine_state("producer", {"log": job_state.shared_log})

    def consume(slot_data, message, job_state):
        item = slot_data["in"][0]
        job_state.shared_data["got"] = (type(item["log"]).__name__, list(item["log"]), item["data"])

    producer = Routine()
    producer.add_slot("trigger")
    producer.add_event("out")
    producer.set_logic(produce)
    producer.set_executor("process")
    consumer = Routine()
    consumer.add_slot("in")
    consumer.set_logic(consume)
    flow = Flow("emit_the_view")
    flow.add_routine(producer, "producer")
    flow.add_routine(consumer, "consumer")
    flow.connect("producer", "out", "consumer", "in")

    state = make_runtime(thread_pool_size=1).run(flow, timeout=WAIT)

    assert state.status == ExecutionStatus.COMPLETED, state.error
    assert state.shared_data["got"] == ("list", ["step-1"], {"k": 1})
    assert state.get_routine_state("producer") == {"log": ["step-1"]}


def test_replacing_shared_data_in_remote_logic_is_refused_not_silently_lost(make_runtime):
    def replace(slot_data, message, job_state):
        job_state.shared_log += ["kept"]  # rebinds the same list: a recorded extend
        job_state.shared_data = {"replaced": True}

    state = make_runtime(thread_pool_size=1).run(single(replace), timeout=WAIT)

    # On threads the assignment takes effect; remotely it must not vanish without a word.
    assert state.shared_data == {"replaced": True} or state.status == ExecutionStatus.FAILED
    assert state.shared_log == ["kept"]
    if state.status == ExecutionStatus.FAILED:
        assert "shared_data" in str(state.error)


def test_an_exception_whose_str_fails_keeps_its_type_and_the_writes_made_before(make_runtime):
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no text for you")

    def fail(slot_data, message, job_state):
        job_state.shared_data["before"] = 1
        raise Unprintable()

    state = make_runtime(thread_pool_size=1).run(single(fail, "printer"), timeout=WAIT)

    assert state.status == ExecutionStatus.FAILED
    assert isinstance(state.error, RoutineError)
    assert state.error.error_type.endswith("Unprintable")
    assert state.error_routine_id == "printer"
    assert state.shared_data == {"before": 1}


# -- pre-flight ----------------------------------------------------------------------------


def test_preflight_names_a_class_attribute_of_a_routine_class_sent_by_value(make_runtime):
    """A class local to a function (or of ``__main__``) is pickled with its attributes."""

    class Guarded(Routine):
        guard = threading.Lock()

        def __init__(self) -> None:
            super().__init__()
            self.add_slot("trigger")
            self.set_executor("process")

        def logic(self, slot_data, message, job_state):
            with self.guard:
                job_state.shared_data["ok"] = True

    flow = Flow("guarded")
    flow.add_routine(Guarded(), "guarded")
    runtime = make_runtime(thread_pool_size=1)

    with pytest.raises(FlowValidationError) as caught:
        runtime.exec(flow)
    assert "routine 'guarded'" in str(caught.value)
    assert "'guard'" in str(caught.value), f"the attribute is not named: {caught.value}"
