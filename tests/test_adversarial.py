"""Adversarial scheduler tests: interleavings forced with gates, hooks and executors.

Each test pins one edge case of ``JobRun``: a job closing (cancel, timeout, STOP) while an
activation is being decided, handed over, retried or blocked; user code (policies, error
handler overrides, hooks) acting at an odd moment; resuming a job. A hang fails the test
through a bounded wait instead of blocking the run.

The "remote" tests use :class:`QueueExecutor`, the plainest third-party executor there is:
``in_process=False``, stdlib futures that stay pending until one of its daemon threads takes
them, and the ``Executor.cancel`` it inherits. Remote logic is pickled, so it lives in
module-level classes and reaches test state through module-level functions.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import pytest

from routilux_kernel import (
    ErrorHandler,
    ErrorStrategy,
    ExecutionStatus,
    Executor,
    ExecutorCapabilities,
    Flow,
    JobState,
    Routine,
    Runtime,
    hookimpl,
)

WAIT = 10.0
SHORT = 3.0  # a bounded wait that only a hang exceeds

# -- module-level state that pickled (remote) logic reaches by reference -------------------

_gates: dict[str, threading.Event] = {}
_seen: list[tuple[str, Any]] = []


def _gate(name: str) -> threading.Event:
    return _gates.setdefault(name, threading.Event())


def _record(routine_id: str | None, slot_data: Any) -> None:
    _seen.append((routine_id, slot_data))


@pytest.fixture(autouse=True)
def _fresh_module_state() -> Iterator[None]:
    _gates.clear()
    _seen.clear()
    yield
    for event in list(_gates.values()):
        event.set()


class RemoteWorker(Routine):
    """A remote routine: records what it got; holds on gate ``hold`` or fails if told to."""

    def __init__(self, slot: str = "in", hold: str | None = None, fail: bool = False) -> None:
        super().__init__()
        self.add_slot(slot)
        self.set_config(hold=hold, fail=fail)

    def logic(self, slot_data: Any, policy_message: Any, job_state: Any) -> None:
        hold = self.get_config("hold")
        if hold:
            _gate(f"{hold}:started").set()
            _gate(hold).wait(WAIT)
        if self.get_config("fail"):
            raise ConnectionError("service down")
        _record(job_state.current_routine_id, slot_data)


class QueueExecutor(Executor):
    """Futures run in order by daemon threads; ``cancel`` is the inherited ``future.cancel()``."""

    name = "queue_remote"
    capabilities = ExecutorCapabilities(in_process=False)

    def __init__(self, workers: int = 1) -> None:
        self._tasks: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._outstanding = 0
        self._idle = threading.Condition()
        #: Called at the start of every ``submit`` (to hold a hand-over in a test).
        self.on_submit: Callable[[], None] | None = None
        for n in range(workers):
            threading.Thread(target=self._work, name=f"queue-remote-{n}", daemon=True).start()

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        if self.on_submit is not None:
            self.on_submit()
        future: Future[Any] = Future()
        with self._idle:
            self._outstanding += 1
        self._tasks.put((future, fn, args))
        return future

    def _work(self) -> None:
        while True:
            task = self._tasks.get()
            if task is None:
                return
            future, fn, args = task
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        result = fn(*args)
                    except BaseException as exc:  # noqa: BLE001 - handed to the future
                        future.set_exception(exc)
                    else:
                        future.set_result(result)
            finally:
                with self._idle:
                    self._outstanding -= 1
                    self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """True once every submitted task ran (or was dropped as cancelled)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._outstanding == 0, timeout)

    def shutdown(self, wait: bool = True) -> None:
        self._tasks.put(None)


@pytest.fixture
def runtimes(gates: Any) -> Iterator[Callable[..., Runtime]]:
    """Runtimes that shut down quickly; ``build.abandon(rt)`` leaves a deadlocked one alone."""
    created: list[Runtime] = []

    def build(*args: Any, **kwargs: Any) -> Runtime:
        runtime = Runtime(*args, **kwargs)
        created.append(runtime)
        return runtime

    build.abandon = created.remove  # type: ignore[attr-defined]
    yield build
    gates.open_all()
    for event in list(_gates.values()):
        event.set()
    for runtime in created:
        runtime.shutdown(wait=True, timeout=SHORT)


def wait_for_history(state: JobState, kind: str) -> None:
    """Poll (bounded) until the job's history holds an entry of ``kind``."""
    deadline = time.monotonic() + WAIT
    while not any(entry[2] == kind for entry in list(state.history)):
        assert time.monotonic() < deadline, f"no {kind!r} entry in the job's history"
        time.sleep(0.002)


def fan_out_flow(make_routine: Any, *targets: Routine, flow_id: str = "fan_out") -> Flow:
    """In-process ``src`` emits ``n=1`` once on ``out``, connected to each target's ``in``
    (in the order given); it sets gate ``src:emitted`` once the emit returned."""
    src = make_routine(["trigger"], ["out"])

    def emit_once(slot_data: Any, message: Any, job_state: Any) -> None:
        src.emit("out", n=1)
        _gate("src:emitted").set()

    src.set_logic(emit_once)
    src.set_executor("thread")
    flow = Flow(flow_id)
    flow.add_routine(src, "src")
    for index, target in enumerate(targets):
        target_id = chr(ord("a") + index)
        flow.add_routine(target, target_id)
        flow.connect("src", "out", target_id, "in")
    return flow


# -- closing a job while remote activations are queued, handed over or retried ------------


def test_cancel_with_a_queued_remote_activation_does_not_deadlock(runtimes, make_routine):
    """``Future.cancel()`` runs done-callbacks at once; the kernel must not hold its job lock."""
    executor = QueueExecutor(workers=1)
    runtime = runtimes(executor=executor)
    flow = fan_out_flow(make_routine, RemoteWorker(hold="A"), RemoteWorker())
    state = runtime.exec(flow, entry_routine_id="src")
    assert _gate("src:emitted").wait(WAIT)  # a runs on the only worker, b waits in its queue
    assert _gate("A:started").wait(WAIT)

    canceller = threading.Thread(target=runtime.cancel_job, args=(state.job_id,), daemon=True)
    canceller.start()
    canceller.join(SHORT)
    if canceller.is_alive():
        runtimes.abandon(runtime)  # its job lock is held forever: shutting down would hang
        pytest.fail("cancel_job deadlocked: the executor's cancel ran callbacks under the job lock")
    _gate("A").set()
    assert state.wait(SHORT)
    assert state.status == ExecutionStatus.CANCELLED
    assert state.unconsumed == {"b": {"in": [{"n": 1}]}}
    assert executor.wait_idle(SHORT)
    assert [rid for rid, _ in _seen] == ["a"]


def test_cancel_during_a_remote_retry_wait_keeps_the_data(runtimes, make_routine):
    runtime = runtimes(executor=QueueExecutor())
    routine = RemoteWorker(slot="trigger", fail=True)
    routine.set_error_handler(ErrorHandler(ErrorStrategy.RETRY, max_retries=3, retry_delay=5.0))
    flow = Flow("remote_retry_wait")
    flow.add_routine(routine, "caller")
    state = runtime.exec(flow, {"order": 42})
    wait_for_history(state, "error")  # recorded when the retry is put on the timer
    assert runtime.cancel_job(state.job_id)
    assert state.status == ExecutionStatus.CANCELLED
    assert state.unconsumed == {"caller": {"trigger": [{"order": 42}]}}


def test_cancel_keeps_the_data_of_a_remote_activation_not_yet_handed_over(runtimes, make_routine):
    """Two activations decided by one emit; the job ends while the first is handed over."""
    executor = QueueExecutor(workers=2)
    holding = threading.Event()

    def hold_first_submit() -> None:
        executor.on_submit = None
        holding.set()
        _gate("submit").wait(WAIT)

    executor.on_submit = hold_first_submit
    runtime = runtimes(executor=executor)
    flow = fan_out_flow(make_routine, RemoteWorker(), RemoteWorker())
    state = runtime.exec(flow, entry_routine_id="src")
    assert holding.wait(WAIT)  # a is in executor.submit; b is decided, not yet handed over
    assert runtime.cancel_job(state.job_id)
    _gate("submit").set()
    assert _gate("src:emitted").wait(WAIT)
    assert executor.wait_idle(SHORT)

    ran = {rid for rid, _ in _seen}
    for rid in ("a", "b"):
        kept = state.unconsumed.get(rid) == {"in": [{"n": 1}]}
        assert (rid in ran) != kept, f"{rid}: ran={rid in ran}, kept={state.unconsumed}"


class RefusingCancelExecutor(QueueExecutor):
    """An executor whose cancel fails (say, its scheduler is unreachable)."""

    def cancel(self, future: Future[Any], force: bool = False) -> bool:
        raise ConnectionError("scheduler unreachable")


def test_a_job_ends_even_when_the_executor_cannot_cancel(runtimes, make_routine):
    executor = RefusingCancelExecutor(workers=1)
    runtime = runtimes(executor=executor)
    flow = fan_out_flow(make_routine, RemoteWorker(hold="A"), RemoteWorker())
    state = runtime.exec(flow, entry_routine_id="src")
    assert _gate("src:emitted").wait(WAIT)
    assert _gate("A:started").wait(WAIT)
    try:
        runtime.cancel_job(state.job_id)
    except ConnectionError:
        pass  # telling the caller is fine; stranding the job is not
    _gate("A").set()
    assert state.wait(SHORT), "the job never finished"
    assert state.status == ExecutionStatus.CANCELLED
    assert runtime.wait_until_all_jobs_finished(SHORT)


# -- closing a job while in-process work is blocked, decided or queued ---------------------


def test_an_emit_blocked_on_a_full_slot_is_kept_when_the_job_is_cancelled(
    runtimes, make_routine, gates
):
    gate = gates.new()
    about_to_block = threading.Event()
    runtime = runtimes(thread_pool_size=4)
    source = make_routine(["trigger"], ["out"])

    def emit_three(slot_data, message, job_state):
        source.emit("out", n=0)  # taken by the worker, which holds on the gate
        source.emit("out", n=1)  # fills the slot
        about_to_block.set()
        source.emit("out", n=2)  # waits for room

    def hold(slot_data, message, job_state):
        gate.wait(WAIT)

    source.set_logic(emit_three)
    worker = make_routine(["in"], [], hold, max_queue_length=1, on_full="block", block_timeout=WAIT)
    flow = Flow("blocked_emit")
    flow.add_routine(source, "source")
    flow.add_routine(worker, "worker")
    flow.connect("source", "out", "worker", "in")
    state = runtime.exec(flow)
    assert about_to_block.wait(WAIT)
    time.sleep(0.1)  # let the third emit reach its wait (if not, the test still holds)
    assert runtime.cancel_job(state.job_id)
    gate.set()
    assert runtime.wait_until_all_jobs_finished(SHORT)
    runtime.shutdown(wait=True)  # the source's logic has returned
    assert state.unconsumed == {"worker": {"in": [{"n": 1}, {"n": 2}]}}


def test_a_policy_failing_mid_emit_keeps_the_data_of_the_later_targets(runtimes, make_routine):
    def broken_policy(slots, job_state):
        raise RuntimeError("policy bug")

    runtime = runtimes(thread_pool_size=2)
    flow = fan_out_flow(
        make_routine,
        make_routine(["in"], [], lambda *a: None, policy=broken_policy),
        make_routine(["in"], [], lambda *a: None),
    )
    state = runtime.exec(flow, entry_routine_id="src")
    assert state.wait(SHORT)
    assert state.status == ExecutionStatus.FAILED
    assert state.unconsumed == {"a": {"in": [{"n": 1}]}, "b": {"in": [{"n": 1}]}}


def test_unconsumed_data_keeps_its_order_when_a_queued_activation_is_cancelled(
    runtimes, make_routine, gates
):
    """The item a queued activation took is older than the items still in the slot."""
    gate = gates.new()
    emitted = threading.Event()
    runtime = runtimes(thread_pool_size=1)
    source = make_routine(["trigger"], ["out"])

    def emit_two(slot_data, message, job_state):
        source.emit("out", n=1)  # 'sink' takes it; its activation waits for the only worker
        source.emit("out", n=2)  # 'sink' is busy: stays in the slot
        emitted.set()
        gate.wait(WAIT)

    source.set_logic(emit_two)
    flow = Flow("order")
    flow.add_routine(source, "source")
    flow.add_routine(make_routine(["in"], [], lambda *a: None), "sink")
    flow.connect("source", "out", "sink", "in")
    state = runtime.exec(flow)
    assert emitted.wait(WAIT)
    assert runtime.cancel_job(state.job_id)
    assert state.unconsumed == {"sink": {"in": [{"n": 1}, {"n": 2}]}}


class _CancelOnStart:
    """A plugin that cancels a job from ``job_started`` (say, a quota check)."""

    def __init__(self) -> None:
        self.runtime: Runtime | None = None

    @hookimpl
    def job_started(self, job_state: JobState, flow: Flow) -> None:
        assert self.runtime is not None
        self.runtime.cancel_job(job_state.job_id)


def test_a_job_cancelled_as_it_starts_keeps_its_saved_data(runtimes, make_routine):
    plugin = _CancelOnStart()
    runtime = plugin.runtime = runtimes(thread_pool_size=2, plugins=[plugin])
    ran = []
    flow = Flow("saved")
    flow.add_routine(make_routine(["trigger"], [], lambda *a: ran.append(a[0])), "r")
    saved = JobState.from_dict({"flow_id": "saved", "unconsumed": {"r": {"trigger": [{"n": 1}]}}})
    state = runtime.exec(flow, job_state=saved, timeout=WAIT)
    assert state.wait(SHORT)
    assert state.status == ExecutionStatus.CANCELLED
    assert runtime.wait_until_all_jobs_finished(SHORT)
    assert ran == []
    assert state.unconsumed == {"r": {"trigger": [{"n": 1}]}}


def test_shutdown_without_wait_ends_jobs_in_every_state(make_routine, gates):
    """Running, waiting for a retry, waiting for a wake-up, queued, blocked on a full slot."""
    from routilux_kernel.activation_policies import time_interval

    gate = gates.new()
    started = threading.Event()
    about_to_block, emit_returned = threading.Event(), threading.Event()
    runtime = Runtime(thread_pool_size=3)
    states: dict[str, JobState] = {}
    try:

        def hold(slot_data, message, job_state):
            started.set()
            gate.wait(WAIT)

        running = Flow("running")
        running.add_routine(make_routine(["trigger"], [], hold), "r")
        states["running"] = runtime.exec(running, {"k": "running"})
        assert started.wait(WAIT)

        def fail(slot_data, message, job_state):
            raise ConnectionError("down")

        retrying = Flow("retrying")
        flaky = make_routine(["trigger"], [], fail)
        flaky.set_error_handler(ErrorHandler(ErrorStrategy.RETRY, retry_delay=WAIT))
        retrying.add_routine(flaky, "r")
        states["retrying"] = runtime.exec(retrying, {"k": "retrying"})
        wait_for_history(states["retrying"], "error")

        spaced = Flow("spaced")  # n=0 runs at once, n=1 waits WAIT seconds for its turn
        source = make_routine(["trigger"], ["out"])
        emitted, first_done = threading.Event(), threading.Event()

        def emit_two(slot_data, message, job_state):
            source.emit("out", n=0)
            source.emit("out", n=1)
            emitted.set()

        source.set_logic(emit_two)
        spaced.add_routine(source, "source")
        spaced.add_routine(
            make_routine(["in"], [], lambda *a: first_done.set(), policy=time_interval(WAIT)), "r"
        )
        spaced.connect("source", "out", "r", "in")
        states["spaced"] = runtime.exec(spaced)
        assert emitted.wait(WAIT) and first_done.wait(WAIT)

        blocked = Flow("blocked")
        emitter = make_routine(["trigger"], ["out"])

        def emit_three(slot_data, message, job_state):
            emitter.emit("out", n=0)
            emitter.emit("out", n=1)
            about_to_block.set()
            emitter.emit("out", n=2)
            emit_returned.set()

        emitter.set_logic(emit_three)
        blocked.add_routine(emitter, "source")
        blocked.add_routine(
            make_routine(["in"], [], hold, max_queue_length=1, on_full="block", block_timeout=WAIT),
            "r",
        )
        blocked.connect("source", "out", "r", "in")
        states["blocked"] = runtime.exec(blocked)
        assert about_to_block.wait(WAIT)

        queued = Flow("queued")  # every worker is busy now: its activation waits in the queue
        queued.add_routine(make_routine(["trigger"], [], lambda *a: None), "r")
        states["queued"] = runtime.exec(queued, {"k": "queued"})

        begun = time.monotonic()
        runtime.shutdown(wait=False)
        assert time.monotonic() - begun < SHORT  # no waiting on retry or wake-up timers
        assert runtime.wait_until_all_jobs_finished(0)
        for name, state in states.items():
            assert state.wait(0), name
            assert state.status == ExecutionStatus.CANCELLED, (name, state.status)
        assert states["retrying"].unconsumed == {"r": {"trigger": [{"k": "retrying"}]}}
        assert states["queued"].unconsumed == {"r": {"trigger": [{"k": "queued"}]}}
        assert states["spaced"].unconsumed == {"r": {"in": [{"n": 1}]}}
    finally:
        gate.set()
        runtime.shutdown(wait=True)
    assert emit_returned.wait(WAIT)  # the blocked emit was released by the shutdown
    assert states["blocked"].unconsumed == {"r": {"in": [{"n": 1}, {"n": 2}]}}


# -- user code raising or asking for wake-ups at odd points -------------------------------


def test_an_error_handler_override_that_raises_still_ends_the_job(runtimes, make_routine):
    class Picky(Routine):
        def get_error_handler(self) -> ErrorHandler | None:
            raise LookupError("no handler configured for this tenant")

        def logic(self, slot_data: Any, policy_message: Any, job_state: Any) -> None:
            raise ValueError("boom")

    routine = Picky()
    routine.add_slot("trigger")
    flow = Flow("picky")
    flow.add_routine(routine, "picky")
    runtime = runtimes(thread_pool_size=2)
    state = runtime.exec(flow)
    assert state.wait(SHORT), "the job never finished"
    assert state.status == ExecutionStatus.FAILED


def test_a_policy_that_cancels_its_job_does_not_deadlock(runtimes, make_routine):
    """Policies run under the job's lock; calling back into the runtime must not hang.

    The policy sees the entry data inside ``exec``, so a deadlock holds this test's own
    daemon thread, never a worker the interpreter joins at exit.
    """
    holder: dict[str, Runtime] = {}

    def cancel_when_fed(slots, job_state):
        if slots.any_ready():
            holder["runtime"].cancel_job(job_state.job_id)  # "abort: input refused"
        return False, None, None

    flow = Flow("policy_cancels")
    flow.add_routine(make_routine(["trigger"], [], lambda *a: None, policy=cancel_when_fed), "r")
    runtime = holder["runtime"] = runtimes(thread_pool_size=2)
    states: list[JobState] = []
    starter = threading.Thread(target=lambda: states.append(runtime.exec(flow)), daemon=True)
    starter.start()
    starter.join(SHORT)
    if starter.is_alive():
        runtimes.abandon(runtime)  # the job's lock is held forever: shutting down would hang
        pytest.fail("cancel_job called from an activation policy deadlocked exec")
    assert states and states[0].wait(SHORT)
    assert states[0].status in (ExecutionStatus.CANCELLED, ExecutionStatus.FAILED)


class _FlushWhenQuiet:
    """Holds data until the job is idle, then flushes it after a short quiet period."""

    def __call__(self, slots: Any, job_state: Any) -> tuple[bool, Any, Any]:
        if slots.state.get("due") and slots.any_ready():
            return True, slots.take_all(), "flush"
        return False, None, None

    def on_idle(self, slots: Any, job_state: Any) -> tuple[bool, Any, Any]:
        slots.state["due"] = True
        slots.wake_after(0.05)  # "the job does not complete while a wake-up is pending"
        return False, None, None


def test_a_wake_up_requested_from_on_idle_keeps_the_job_open(runtimes, make_routine):
    got = []
    flow = Flow("quiet")
    flow.add_routine(
        make_routine(
            ["trigger"], [], lambda slot_data, *a: got.append(slot_data), policy=_FlushWhenQuiet()
        ),
        "flusher",
    )
    runtime = runtimes(thread_pool_size=2)
    state = runtime.exec(flow, {"n": 1})
    assert state.wait(SHORT)
    assert state.status == ExecutionStatus.COMPLETED
    assert got == [{"trigger": [{"n": 1}]}]
    assert state.unconsumed == {}


def test_a_skipped_routine_releases_an_emitter_blocked_on_its_slot(runtimes, make_routine):
    taken = threading.Event()
    about_to_block = threading.Event()
    timings = []
    runtime = runtimes(thread_pool_size=4)
    source = make_routine(["trigger"], ["out"])

    def emit_three(slot_data, message, job_state):
        source.emit("out", n=0)
        assert taken.wait(WAIT)
        source.emit("out", n=1)  # fills the slot
        about_to_block.set()
        started = time.monotonic()
        source.emit("out", n=2)  # blocks until the worker is skipped (its slot is drained)
        timings.append(time.monotonic() - started)

    def fail_later(slot_data, message, job_state):
        taken.set()
        assert about_to_block.wait(WAIT)
        time.sleep(0.1)  # let the third emit reach its wait
        raise ValueError("give up on this routine")

    source.set_logic(emit_three)
    # block_timeout: far above the expected wait, below the test's patience
    worker = make_routine(
        ["in"], [], fail_later, max_queue_length=1, on_full="block", block_timeout=2.5
    )
    worker.set_error_handler(ErrorHandler(ErrorStrategy.SKIP))
    flow = Flow("skip_blocked")
    flow.add_routine(source, "source")
    flow.add_routine(worker, "worker")
    flow.connect("source", "out", "worker", "in")
    state = runtime.exec(flow)
    assert state.wait(WAIT)
    assert state.status == ExecutionStatus.COMPLETED, state.error
    assert state.unconsumed == {"worker": {"in": [{"n": 1}, {"n": 2}]}}
    assert timings and timings[0] < 1.0, f"blocked emit waited {timings[0]:.2f}s for room"


# -- resuming a job -------------------------------------------------------------------------


def test_a_job_cannot_be_resumed_twice_at_once(runtimes, make_routine):
    """Concurrent resumes of one JobState: at most one runs at a time, and all finish."""
    lock = threading.Lock()
    running = [0, 0]  # now, peak

    def logic(slot_data, message, job_state):
        with lock:
            running[0] += 1
            running[1] = max(running)
        time.sleep(0.001)
        with lock:
            running[0] -= 1

    flow = Flow("resume_race")
    flow.add_routine(make_routine(["trigger"], [], logic), "r")
    runtime = runtimes(thread_pool_size=4)
    state = runtime.run(flow)
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and running[1] <= 1:
            barrier = threading.Barrier(5)

            def resume(barrier: threading.Barrier = barrier) -> None:
                barrier.wait()
                try:
                    runtime.exec(flow, {"again": True}, job_state=state)
                except ValueError:
                    pass  # "still running": the right answer for all but one

            threads = [threading.Thread(target=resume) for _ in range(5)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(WAIT)
            assert state.wait(SHORT), "a resumed job never finished"
            if not runtime.wait_until_all_jobs_finished(SHORT):
                runtimes.abandon(runtime)
                runtime.shutdown(wait=False)
                pytest.fail("a resumed job stays registered as running forever")
    finally:
        sys.setswitchinterval(previous)
    assert running[1] == 1, "two resumes of one job ran its routine at the same time"


def test_a_job_is_not_resumed_while_its_cancelled_logic_still_runs(runtimes, make_routine, gates):
    """Routines of one job run one activation at a time, across a cancel and a resume."""
    gate = gates.new()
    started = threading.Event()
    lock = threading.Lock()
    running = [0, 0]

    def logic(slot_data, message, job_state):
        with lock:
            running[0] += 1
            running[1] = max(running)
        started.set()
        if slot_data["trigger"][0]["n"] == 1:
            gate.wait(WAIT)  # ignores cancel_requested, as slow I/O does
        with lock:
            running[0] -= 1

    flow = Flow("resume_after_cancel")
    flow.add_routine(make_routine(["trigger"], [], logic), "r")
    runtime = runtimes(thread_pool_size=4)
    state = runtime.exec(flow, {"n": 1})
    assert started.wait(WAIT)
    assert runtime.cancel_job(state.job_id)
    try:
        runtime.exec(flow, {"n": 2}, job_state=state)
    except ValueError:
        pass  # refusing the resume until the logic returned is fine
    else:
        assert state.wait(SHORT)
    gate.set()
    assert runtime.wait_until_all_jobs_finished(SHORT)
    runtime.shutdown(wait=True)
    assert running[1] == 1, "the resumed job ran 'r' while its cancelled activation still ran"


# -- JobState is read while late work changes it -------------------------------------------


def test_to_dict_of_a_cancelled_job_while_its_logic_still_emits(runtimes, make_routine, gates):
    """Saving a cancelled job (to resume it later) while its logic has not returned yet."""
    gate = gates.new()
    started = threading.Event()
    done = threading.Event()
    targets = 200
    source = make_routine(["trigger"], [f"e{i}" for i in range(targets)])

    def emit_everywhere(slot_data, message, job_state):
        started.set()
        gate.wait(WAIT)
        for i in range(targets):
            source.emit(f"e{i}", i=i)  # after the cancel: each lands in unconsumed
        done.set()

    source.set_logic(emit_everywhere)
    flow = Flow("late_emits")
    flow.add_routine(source, "source")
    for i in range(targets):
        flow.add_routine(make_routine(["in"], [], lambda *a: None), f"t{i}")
        flow.connect("source", f"e{i}", f"t{i}", "in")
    runtime = runtimes(thread_pool_size=2)
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(5):
            gate.clear()
            started.clear()
            done.clear()
            state = runtime.exec(flow, entry_routine_id="source")
            assert started.wait(WAIT)
            assert runtime.cancel_job(state.job_id)
            gate.set()
            while not done.is_set():
                state.to_dict()  # must never raise "dictionary changed size during iteration"
            assert len(state.to_dict()["unconsumed"]) == targets
    finally:
        sys.setswitchinterval(previous)
