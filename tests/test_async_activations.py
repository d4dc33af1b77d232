"""``async def`` logic: it runs on the runtime's event loop and behaves as sync logic does.

Emits, routine state, shared data, error strategies, cancel, timeouts and hooks are checked
from the user's side, mixed with sync routines in one flow; concurrency is pinned with
barriers (every activation must be waiting at once for any to go on), never with timing.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from routilux_kernel import (
    ErrorHandler,
    ErrorStrategy,
    ExecutionStatus,
    Flow,
    JobTimeoutError,
    Routine,
    Runtime,
    SlotFullError,
    configure_logging,
    hookimpl,
)
from routilux_kernel.engine.log_config import disable_logging

MakeRuntime = Callable[..., Runtime]
WAIT = 10.0


class AsyncDoubler(Routine):
    """Async method logic: awaits, records state and shared data, emits twice its input."""

    def __init__(self) -> None:
        super().__init__()
        self.add_slot("trigger")
        self.add_event("out")

    async def logic(self, slot_data: Any, message: Any, job_state: Any) -> None:
        value = slot_data["trigger"][0]["value"]
        await asyncio.sleep(0)
        job_state.update_routine_state(
            "double", {"seen": value, "me": job_state.current_routine_id}
        )
        job_state.shared_data["doubled"] = value * 2
        self.emit("out", value=value * 2)


def collector(name: str = "sink") -> Routine:
    """A sync routine that stores every value it receives in ``shared_data[name]``."""
    routine = Routine()
    routine.add_slot("input")

    def logic(slot_data: Any, message: Any, job_state: Any) -> None:
        job_state.shared_data.setdefault(name, []).extend(i["value"] for i in slot_data["input"])

    routine.set_logic(logic)
    return routine


def async_then_sync_flow() -> Flow:
    flow = Flow("async_then_sync")
    flow.add_routine(AsyncDoubler(), "double")
    flow.add_routine(collector(), "sink")
    flow.connect("double", "out", "sink", "input")
    return flow


def test_async_method_logic_emits_and_writes_state_like_sync_logic(runtime: Runtime) -> None:
    state = runtime.run(async_then_sync_flow(), {"value": 21}, timeout=WAIT)
    assert state.status == ExecutionStatus.COMPLETED, state.error
    assert state.get_routine_state("double") == {"seen": 21, "me": "double"}
    assert state.shared_data == {"doubled": 42, "sink": [42]}


def test_set_logic_takes_an_async_function_and_emits_in_order(runtime: Runtime) -> None:
    source = Routine()
    source.add_slot("trigger")
    source.add_event("out")

    async def produce(slot_data: Any, message: Any, job_state: Any) -> None:
        for value in range(5):
            await asyncio.sleep(0)
            source.emit("out", value=value)

    source.set_logic(produce)
    flow = Flow("ordered")
    flow.add_routine(source, "source")
    sink = collector()
    sink.set_activation_policy(lambda run, job_state: (True, run._drain(), None))
    flow.add_routine(sink, "sink")
    flow.connect("source", "out", "sink", "input")
    state = runtime.run(flow, timeout=WAIT)
    assert state.status == ExecutionStatus.COMPLETED, state.error
    assert state.shared_data["sink"] == [0, 1, 2, 3, 4]


def test_switching_logic_from_sync_to_async_after_a_run_takes_effect(runtime: Runtime) -> None:
    routine = Routine()
    routine.add_slot("trigger")
    routine.set_logic(lambda slot_data, message, job_state: job_state.shared_log.append("sync"))
    flow = Flow("switch")
    flow.add_routine(routine, "only")
    assert runtime.run(flow, timeout=WAIT).shared_log == ["sync"]

    async def async_logic(slot_data: Any, message: Any, job_state: Any) -> None:
        await asyncio.sleep(0)
        job_state.shared_log.append("async")

    routine.set_logic(async_logic)
    assert runtime.run(flow, timeout=WAIT).shared_log == ["async"]


def test_logic_returning_an_awaitable_is_awaited(runtime: Runtime) -> None:
    """A callable object with ``async __call__`` is not a coroutine function, yet awaited."""

    class AsyncCallable:
        async def __call__(self, slot_data: Any, message: Any, job_state: Any) -> None:
            await asyncio.sleep(0)
            job_state.shared_data["ran"] = threading.current_thread().name
            routine.emit("out", value=7)

    routine = Routine()
    routine.add_slot("trigger")
    routine.add_event("out")
    routine.set_logic(AsyncCallable())
    flow = Flow("callable")
    flow.add_routine(routine, "source")
    flow.add_routine(collector(), "sink")
    flow.connect("source", "out", "sink", "input")
    state = runtime.run(flow, timeout=WAIT)
    assert state.status == ExecutionStatus.COMPLETED, state.error
    assert state.shared_data == {"ran": "routilux-async", "sink": [7]}


# -- concurrency: the loop, not the pool, bounds async work ---------------------------------


class Barrier:
    """Opens when ``parties`` async activations wait on it at once (all on the one loop)."""

    def __init__(self, parties: int) -> None:
        self.parties = parties
        self.arrived = 0
        self.event: asyncio.Event | None = None

    async def wait(self) -> None:
        if self.event is None:
            self.event = asyncio.Event()
        self.arrived += 1
        if self.arrived == self.parties:
            self.event.set()
        await asyncio.wait_for(self.event.wait(), WAIT)


def test_async_activations_are_not_capped_by_the_thread_pool(make_runtime: MakeRuntime) -> None:
    jobs = 50
    barrier = Barrier(jobs)
    routine = Routine()
    routine.add_slot("trigger")

    async def meet(slot_data: Any, message: Any, job_state: Any) -> None:
        await barrier.wait()  # times out unless all 50 jobs wait here at the same time
        job_state.shared_data["met"] = barrier.arrived

    routine.set_logic(meet)
    flow = Flow("barrier")
    flow.add_routine(routine, "meet")
    runtime = make_runtime(thread_pool_size=1)
    states = [runtime.exec(flow) for _ in range(jobs)]
    assert runtime.wait_until_all_jobs_finished(WAIT)
    assert [s.status for s in states] == [ExecutionStatus.COMPLETED] * jobs
    assert {s.shared_data["met"] for s in states} == {jobs}


def test_a_blocked_sync_routine_never_blocks_async_ones(
    make_runtime: MakeRuntime, gates: Any
) -> None:
    gate = gates.new()
    blocker = Routine()
    blocker.add_slot("trigger")
    blocker.set_logic(lambda slot_data, message, job_state: gate.wait(WAIT))
    blocked_flow = Flow("blocked")
    blocked_flow.add_routine(blocker, "block")
    runtime = make_runtime(thread_pool_size=1)
    blocked = runtime.exec(blocked_flow)  # holds the only worker thread
    async_only = Flow("async_only")
    async_only.add_routine(AsyncDoubler(), "double")
    done = [runtime.exec(async_only, {"value": n}) for n in range(10)]
    for state in done:
        assert state.wait(WAIT) and state.status == ExecutionStatus.COMPLETED
    assert [s.shared_data for s in done] == [{"doubled": 2 * n} for n in range(10)]
    # A sync routine after an async one needs the pool: it waits for the blocker.
    mixed = runtime.exec(async_then_sync_flow(), {"value": 1})
    assert not mixed.wait(0.05)
    assert blocked.status == ExecutionStatus.RUNNING
    gate.set()
    assert blocked.wait(WAIT) and blocked.status == ExecutionStatus.COMPLETED
    assert mixed.wait(WAIT) and mixed.shared_data == {"doubled": 2, "sink": [2]}


# -- errors --------------------------------------------------------------------------------


def failing_flow(fail_times: int, handler: ErrorHandler | None, log: list[str]) -> Flow:
    attempts = {"n": 0}
    routine = Routine()
    routine.add_slot("trigger")
    routine.add_event("out")

    async def flaky(slot_data: Any, message: Any, job_state: Any) -> None:
        attempts["n"] += 1
        routine.emit("out", value=attempts["n"])  # delivered even when this attempt fails
        await asyncio.sleep(0)
        if attempts["n"] <= fail_times:
            raise ValueError(f"attempt {attempts['n']} failed")
        log.append("succeeded")

    routine.set_logic(flaky)
    if handler is not None:
        routine.set_error_handler(handler)
    flow = Flow("flaky")
    flow.add_routine(routine, "flaky")
    flow.add_routine(collector(), "sink")
    flow.connect("flaky", "out", "sink", "input")
    return flow


def test_async_error_stops_the_job_with_the_routine_named(runtime: Runtime) -> None:
    log: list[str] = []
    state = runtime.run(failing_flow(1, None, log), timeout=WAIT)
    assert state.status == ExecutionStatus.FAILED
    assert isinstance(state.error, ValueError) and str(state.error) == "attempt 1 failed"
    assert state.error_routine_id == "flaky"
    assert log == []


def test_async_retry_runs_again_after_its_delay_keeping_earlier_emits(runtime: Runtime) -> None:
    log: list[str] = []
    handler = ErrorHandler(strategy=ErrorStrategy.RETRY, max_retries=3, retry_delay=0.05)
    started = time.perf_counter()
    state = runtime.run(failing_flow(2, handler, log), timeout=WAIT)
    elapsed = time.perf_counter() - started
    assert state.status == ExecutionStatus.COMPLETED, state.error
    assert log == ["succeeded"]
    assert sorted(state.shared_data["sink"]) == [1, 2, 3]  # what failed attempts emitted stays
    assert [e["attempt"] for e in state.errors] == []  # retried errors are not job errors
    assert elapsed >= 0.05 + 0.05 * 2  # two delays (backoff 2): the kernel's timer waited


def test_async_retry_delay_holds_nothing(make_runtime: MakeRuntime) -> None:
    """While one job waits out a long retry delay, other async jobs run and finish."""
    runtime = make_runtime(thread_pool_size=1)
    handler = ErrorHandler(strategy=ErrorStrategy.RETRY, max_retries=1, retry_delay=WAIT)
    waiting = runtime.exec(failing_flow(1, handler, []))
    others = [runtime.exec(async_then_sync_flow(), {"value": n}) for n in range(20)]
    for state in others:
        assert state.wait(WAIT) and state.status == ExecutionStatus.COMPLETED
    assert waiting.status == ExecutionStatus.RUNNING
    assert runtime.cancel_job(waiting.job_id)
    assert waiting.status == ExecutionStatus.CANCELLED


@pytest.mark.parametrize(
    ("strategy", "status", "skipped"),
    [
        (ErrorStrategy.CONTINUE, ExecutionStatus.COMPLETED, set()),
        (ErrorStrategy.SKIP, ExecutionStatus.COMPLETED, {"flaky"}),
    ],
)
def test_async_continue_and_skip(
    runtime: Runtime, strategy: ErrorStrategy, status: ExecutionStatus, skipped: set[str]
) -> None:
    state = runtime.run(failing_flow(1, ErrorHandler(strategy=strategy), []), timeout=WAIT)
    assert state.status == status
    assert [(e["error_type"], e["error"]) for e in state.errors] == [
        ("ValueError", "attempt 1 failed")
    ]
    assert state.skipped_routines == skipped
    assert state.shared_data["sink"] == [1]


# -- cancel, timeouts, shutdown --------------------------------------------------------------


def forever_flow(seen: list[str]) -> Flow:
    """Async logic that waits on an event nobody sets; records how it ended."""
    routine = Routine()
    routine.add_slot("trigger")

    async def wait_forever(slot_data: Any, message: Any, job_state: Any) -> None:
        seen.append("started")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    routine.set_logic(wait_forever)
    flow = Flow("forever")
    flow.add_routine(routine, "wait")
    return flow


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.001)


def test_cancel_job_cancels_the_running_task(runtime: Runtime) -> None:
    seen: list[str] = []
    state = runtime.exec(forever_flow(seen))
    wait_for(lambda: seen == ["started"])
    assert runtime.cancel_job(state.job_id)
    assert state.status == ExecutionStatus.CANCELLED
    wait_for(lambda: seen == ["started", "cancelled"])
    assert runtime.wait_until_all_jobs_finished(WAIT)
    assert [kind for _, _, kind, _ in state.history if kind == "error_after_end"] == []
    # Its logic has ended, so the job can be resumed (and cancelled again).
    flow = forever_flow(seen)
    wait_for(lambda: not state._claimed)
    resumed = runtime.exec(flow, job_state=state)
    wait_for(lambda: seen[2:] == ["started"])
    assert runtime.cancel_job(resumed.job_id)
    wait_for(lambda: seen[2:] == ["started", "cancelled"])


def test_job_timeout_cancels_the_running_task(runtime: Runtime) -> None:
    seen: list[str] = []
    state = runtime.run(forever_flow(seen), timeout=0.1)
    assert state.status == ExecutionStatus.FAILED
    assert isinstance(state.error, JobTimeoutError)
    wait_for(lambda: seen == ["started", "cancelled"])


def test_shutdown_without_waiting_cancels_async_logic() -> None:
    seen: list[str] = []
    runtime = Runtime()
    state = runtime.exec(forever_flow(seen))
    wait_for(lambda: seen == ["started"])
    runtime.shutdown(wait=False)
    assert state.status == ExecutionStatus.CANCELLED
    wait_for(lambda: seen == ["started", "cancelled"])
    with pytest.raises(Exception, match="shut down"):
        runtime.exec(forever_flow(seen))


def test_an_emit_from_async_logic_into_a_full_blocking_slot_raises(runtime: Runtime) -> None:
    source = Routine()
    source.add_slot("trigger")
    source.add_event("out")

    async def flood(slot_data: Any, message: Any, job_state: Any) -> None:
        for value in range(3):
            source.emit("out", value=value)

    source.set_logic(flood)
    sink = Routine()
    sink.add_slot("input", max_queue_length=1, on_full="block")
    sink.set_logic(lambda slot_data, message, job_state: None)
    sink.set_activation_policy(lambda run, job_state: (False, {}, None))  # never consumes
    flow = Flow("full")
    flow.add_routine(source, "source")
    flow.add_routine(sink, "sink")
    flow.connect("source", "out", "sink", "input")
    state = runtime.run(flow, timeout=WAIT)
    assert state.status == ExecutionStatus.FAILED
    assert isinstance(state.error, SlotFullError)
    assert "slot 'input' of routine 'sink' is full" in str(state.error)
    assert "must not block" in str(state.error)
    assert state.unconsumed == {"sink": {"input": [{"value": 0}]}}


# -- hooks -----------------------------------------------------------------------------------


class Recorder:
    """Lifecycle hooks, and a run_activation wrapper that wraps the coroutine it is handed."""

    def __init__(self) -> None:
        self.log: list[Any] = []

    @hookimpl
    def routine_started(self, job_state: Any, routine_id: str) -> None:
        self.log.append(("started", routine_id))

    @hookimpl
    def routine_finished(self, job_state: Any, routine_id: str, error: Any) -> None:
        self.log.append(("finished", routine_id, type(error).__name__ if error else None))

    @hookimpl(wrapper=True)
    def run_activation(self, activation: Any) -> Any:
        result = yield
        if not asyncio.iscoroutine(result):
            self.log.append(("wrapped sync", activation.routine_id))
            return result
        self.log.append(("got coroutine", activation.routine_id))
        log = self.log

        async def timed() -> Any:
            try:
                return await result
            finally:
                log.append(("awaited", activation.routine_id))

        return timed()


def test_hooks_see_async_activations(make_runtime: MakeRuntime) -> None:
    recorder = Recorder()
    runtime = make_runtime(plugins=[recorder])
    state = runtime.run(async_then_sync_flow(), {"value": 2}, timeout=WAIT)
    assert state.status == ExecutionStatus.COMPLETED, state.error
    assert recorder.log == [
        ("started", "double"),
        ("got coroutine", "double"),
        ("awaited", "double"),
        ("finished", "double", None),
        ("started", "sink"),
        ("wrapped sync", "sink"),
        ("finished", "sink", None),
    ]
    assert state.shared_data["sink"] == [4]


def test_routine_finished_sees_the_error_of_async_logic(make_runtime: MakeRuntime) -> None:
    recorder = Recorder()
    runtime = make_runtime(plugins=[recorder])
    state = runtime.run(failing_flow(1, None, []), timeout=WAIT)
    assert state.status == ExecutionStatus.FAILED
    assert ("finished", "flaky", "ValueError") in recorder.log


def test_log_records_of_async_logic_carry_job_and_routine(runtime: Runtime) -> None:
    from loguru import logger

    records: list[dict[str, Any]] = []
    routine = Routine()
    routine.add_slot("trigger")

    async def log_something(slot_data: Any, message: Any, job_state: Any) -> None:
        await asyncio.sleep(0)
        logger.bind().info("inside async logic")

    routine.set_logic(log_something)
    flow = Flow("logging")
    flow.add_routine(routine, "talker")
    sink = configure_logging("INFO", sink=lambda message: records.append(message.record))
    try:
        state = runtime.run(flow, timeout=WAIT)
    finally:
        logger.remove(sink)
        disable_logging()
    assert state.status == ExecutionStatus.COMPLETED
    mine = [r for r in records if r["message"] == "inside async logic"]
    assert [(r["extra"]["job_id"], r["extra"]["routine_id"]) for r in mine] == [
        (state.job_id, "talker")
    ]


# -- remote executors ------------------------------------------------------------------------


def test_async_logic_on_the_process_executor_runs_in_the_worker(
    make_runtime: MakeRuntime,
) -> None:
    runtime = make_runtime(executor="process", executor_options={"max_workers": 1})
    state = runtime.run(async_then_sync_flow(), {"value": 5}, timeout=WAIT * 3)
    assert state.status == ExecutionStatus.COMPLETED, state.error
    assert state.shared_data == {"doubled": 10, "sink": [10]}
    assert state.get_routine_state("double") == {"seen": 5, "me": "double"}
