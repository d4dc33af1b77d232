"""What observers learn about each activation: its id and attempt, the job's entry params and
queue depths, and the context a plugin ships to a remote worker (remote_activation_context).

The module is also a worker plugin (its name is passed as ``worker_plugins``): its
``run_activation`` wrapper reports, from the worker, what the driver shipped.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from loguru import logger

from routilux_kernel import ErrorHandler, ErrorStrategy, Flow, hookimpl
from routilux_kernel.core.job_state import ExecutionStatus

WAIT = 30.0
SEEN_IN_WORKER = "activation_hooks.seen_in_worker"


@hookimpl(wrapper=True)
def run_activation(activation: Any) -> Any:
    """Worker side: tell the driver (through the job history) what this activation carried."""
    if activation.job is None:  # a remote worker's view
        detail = (
            activation.activation_id,
            activation.attempt,
            dict(activation.context),
            os.getpid(),
        )
        activation.job_state.record(activation.routine_id, SEEN_IN_WORKER, detail)
    return (yield)


class ActivationObserver:
    """Records what routine_started / routine_finished / job_started receive."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[Any, ...]] = []
        self.entry_params: list[dict[str, Any]] = []

    @hookimpl
    def job_started(self, job_state: Any, flow: Any, entry_params: dict[str, Any]) -> None:
        self.entry_params.append(dict(entry_params))

    @hookimpl
    def routine_started(self, routine_id: str, activation: Any) -> None:
        with self.lock:
            self.calls.append(("started", routine_id, activation, activation.attempt))

    @hookimpl
    def routine_finished(self, routine_id: str, error: Any, activation: Any) -> None:
        with self.lock:
            outcome = type(error).__name__ if error else None
            self.calls.append(("finished", routine_id, activation, activation.attempt, outcome))


def fails_once(make_routine: Any) -> Any:
    """A routine whose first attempt in a job raises; RETRY runs it again."""

    def logic(slot_data: Any, message: Any, job_state: Any) -> None:
        tries = job_state.get_routine_state("flaky", {}).get("tries", 0)
        job_state.update_routine_state("flaky", {"tries": tries + 1})
        if tries == 0:
            raise ConnectionError("first attempt fails")

    routine = make_routine(logic=logic)
    routine.set_error_handler(ErrorHandler(ErrorStrategy.RETRY, max_retries=2, retry_delay=0.0))
    return routine


def test_hooks_see_one_activation_across_its_retry_and_the_entry_params(
    make_runtime, make_routine
) -> None:
    observer = ActivationObserver()
    flow = Flow("retried")
    flow.add_routine(fails_once(make_routine), "flaky")
    runtime = make_runtime(thread_pool_size=2, plugins=[observer])
    state = runtime.run(flow, {"order": 7, "lines": [1, 2]}, timeout=WAIT)
    assert state.status == ExecutionStatus.COMPLETED
    assert observer.entry_params == [{"order": 7, "lines": [1, 2]}]
    first, second, third, fourth = observer.calls
    assert (first[0], first[3], second[0], second[3], second[4]) == (
        "started",
        0,
        "finished",
        0,
        "ConnectionError",
    )
    assert (third[0], third[3], fourth[0], fourth[3], fourth[4]) == (
        "started",
        1,
        "finished",
        1,
        None,
    )
    activation = first[2]
    assert all(call[2] is activation for call in observer.calls)
    assert isinstance(activation.activation_id, int)
    assert dict(activation.context) == {}


def test_concurrent_activations_of_one_routine_have_distinct_ids(make_runtime, make_routine):
    observer = ActivationObserver()
    both_running = threading.Barrier(2, timeout=WAIT)

    def source_logic(slot_data: Any, message: Any, job_state: Any) -> None:
        source.emit("out", n=1)
        source.emit("out", n=2)

    def worker_logic(slot_data: Any, message: Any, job_state: Any) -> None:
        both_running.wait()  # passes only when two activations of it run at once

    source = make_routine(logic=source_logic)
    worker = make_routine(slots=["input"], events=[], logic=worker_logic).set_concurrency(2)
    flow = Flow("concurrent-ids")
    flow.add_routine(source, "source")
    flow.add_routine(worker, "worker")
    flow.connect("source", "out", "worker", "input")
    state = make_runtime(thread_pool_size=3, plugins=[observer]).run(flow, timeout=WAIT)
    assert state.status == ExecutionStatus.COMPLETED
    started = [call[2] for call in observer.calls if call[:2] == ("started", "worker")]
    finished = [call[2] for call in observer.calls if call[:2] == ("finished", "worker")]
    assert len({a.activation_id for a in started}) == 2
    assert {a.activation_id for a in finished} == {a.activation_id for a in started}
    assert sorted(a.slot_data["input"][0]["n"] for a in started) == [1, 2]


def test_queue_depths_show_items_waiting_while_the_job_runs(make_runtime, make_routine, gates):
    sink_started, gate = gates.new(), gates.new()
    seen: dict[str, Any] = {}

    def burst(slot_data: Any, message: Any, job_state: Any) -> None:
        source.emit("out", i=0)
        assert sink_started.wait(WAIT)
        for i in range(1, 4):
            source.emit("out", i=i)
        seen["depths"] = job_state.queue_depths()  # read from inside the job, too
        gate.set()

    def sink_logic(slot_data: Any, message: Any, job_state: Any) -> None:
        sink_started.set()
        assert gate.wait(WAIT)

    source = make_routine(logic=burst)
    sink = make_routine(slots=["input"], events=[], logic=sink_logic)
    flow = Flow("depths")
    flow.add_routine(source, "source")
    flow.add_routine(sink, "sink")
    flow.connect("source", "out", "sink", "input")
    state = make_runtime(thread_pool_size=2).run(flow, timeout=WAIT)
    assert state.status == ExecutionStatus.COMPLETED
    assert seen["depths"] == {"sink": {"input": 3}}
    assert state.queue_depths() == {}  # a finished job has nothing queued


class ContextShipper:
    """Driver side: attaches a dict to each remote activation."""

    @hookimpl
    def remote_activation_context(self, activation: Any) -> dict[str, Any]:
        return {"shipper": {"id": activation.activation_id, "attempt": activation.attempt}}


class BrokenShipper:
    """Answers a list on the first attempt, raises on the retry."""

    @hookimpl
    def remote_activation_context(self, activation: Any) -> Any:
        if activation.attempt == 1:
            raise RuntimeError("context source down")
        return ["not", "a", "dict"]


def test_remote_activation_context_reaches_the_worker_with_id_and_attempt(
    make_runtime, make_routine
) -> None:
    observer = ActivationObserver()
    flow = Flow("shipped")
    flow.add_routine(fails_once(make_routine), "flaky")
    runtime = make_runtime(
        executor="process",
        executor_options={"max_workers": 1, "worker_plugins": [__name__]},
        plugins=[observer, ContextShipper()],
    )
    state = runtime.run(flow, timeout=WAIT)
    assert state.status == ExecutionStatus.COMPLETED
    activation = observer.calls[0][2]
    in_worker = [entry[3] for entry in state.history if entry[2] == SEEN_IN_WORKER]
    assert [(ident, attempt, context) for ident, attempt, context, _ in in_worker] == [
        (activation.activation_id, 0, {"shipper": {"id": activation.activation_id, "attempt": 0}}),
        (activation.activation_id, 1, {"shipper": {"id": activation.activation_id, "attempt": 1}}),
    ]
    assert {pid for *_, pid in in_worker} != {os.getpid()}


def test_a_failing_context_hook_is_logged_and_the_activation_still_runs(
    make_runtime, make_routine
) -> None:
    flow = Flow("broken-context")
    flow.add_routine(fails_once(make_routine), "flaky")
    runtime = make_runtime(
        executor="process",
        executor_options={"max_workers": 1, "worker_plugins": [__name__]},
        plugins=[ContextShipper(), BrokenShipper()],
    )
    messages: list[str] = []
    logger.enable("routilux_kernel")
    sink = logger.add(lambda m: messages.append(str(m)), level="ERROR", format="{message}")
    try:
        state = runtime.run(flow, timeout=WAIT)
    finally:
        logger.remove(sink)
        logger.disable("routilux_kernel")
    assert state.status == ExecutionStatus.COMPLETED
    contexts = [entry[3][2] for entry in state.history if entry[2] == SEEN_IN_WORKER]
    # First attempt: the list is left out, the other plugin's dict goes. Retry: the hook
    # call raised, so nothing is shipped, and the activation runs all the same.
    shipped = {"shipper": {"id": contexts[0]["shipper"]["id"], "attempt": 0}}
    assert contexts == [shipped, {}]
    assert [m for m in messages if "returned 'list', not a dict" in m]
    (raised,) = [m for m in messages if "raised in hook remote_activation_context" in m]
    assert "plugin 'BrokenShipper@" in raised and "routine flaky of job" in raised
    assert "RuntimeError: context source down" in raised
