"""The ``dask`` executor on a real LocalCluster with worker processes.

One cluster (two single-threaded worker processes) serves the module; runtimes join it with
``address=``. One test starts its own cluster through ``address=None``.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
import pytest
from distributed import LocalCluster
from loguru import logger

from routilux_kernel import (
    ErrorHandler,
    ErrorStrategy,
    ExecutionStatus,
    Flow,
    FlowValidationError,
    Routine,
    RoutineError,
    Runtime,
    hookimpl,
)
from routilux_kernel.executors.remote import WorkerCrashedError

WAIT = 20.0


@hookimpl
def worker_setup(worker: Any) -> None:
    """Loaded on every worker through ``worker_plugins=[__name__]``."""
    os.environ["ROUTILUX_DASK_TEST_SETUP"] = f"{worker.executor}:{type(worker.backend).__name__}"


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        local = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
    try:
        yield local
    finally:
        local.close()


@pytest.fixture
def runtime(cluster: LocalCluster) -> Iterator[Runtime]:
    options = {"address": cluster.scheduler_address, "worker_plugins": [__name__]}
    with Runtime(executor="dask", executor_options=options) as joined:
        yield joined


def routine(logic: Any, slots: tuple[str, ...] = ("trigger",), events=("out",)) -> Routine:
    made = Routine()
    for slot in slots:
        made.add_slot(slot)
    for event in events:
        made.add_event(event)
    made.set_logic(logic)
    return made


def test_a_flow_runs_on_the_cluster_and_its_effects_reach_the_job(runtime: Runtime) -> None:
    def produce(slot_data, message, job_state):
        job_state.update_routine_state("produce", {"pid": os.getpid()})
        job_state.shared_data["setup"] = os.environ.get("ROUTILUX_DASK_TEST_SETUP")
        for n in slot_data["trigger"][0]["numbers"]:
            source.emit("out", n=n)

    def total(slot_data, message, job_state):
        job_state.shared_log.extend(item["n"] for item in slot_data["in"])

    source = routine(produce)
    flow = Flow("dask-chain")
    flow.add_routine(source, "produce")
    flow.add_routine(routine(total, ("in",), ()), "total")
    flow.connect("produce", "out", "total", "in")

    states = [runtime.exec(flow, {"numbers": [j, j + 1, j + 2]}) for j in range(0, 30, 3)]
    assert runtime.wait_until_all_jobs_finished(WAIT)

    for j, state in zip(range(0, 30, 3), states, strict=True):
        assert state.status == ExecutionStatus.COMPLETED, state.error
        assert sorted(state.shared_log) == [j, j + 1, j + 2]
        assert state.get_routine_state("produce")["pid"] != os.getpid()
        assert state.shared_data["setup"] == "dask:Worker"


def test_an_exception_comes_back_as_a_routine_error(runtime: Runtime) -> None:
    def validate_order(slot_data, message, job_state):
        raise ValueError(f"order {slot_data['trigger'][0]['order']} has no items")

    flow = Flow("dask-failing")
    flow.add_routine(routine(validate_order), "validate")

    state = runtime.run(flow, {"order": 42}, timeout=WAIT)

    assert state.status == ExecutionStatus.FAILED
    assert state.error_routine_id == "validate"
    assert isinstance(state.error, RoutineError)
    assert state.error.error_type == "ValueError"
    assert state.error.message == "order 42 has no items"
    assert "validate_order" in state.error.remote_traceback


def test_error_strategies_apply_to_remote_failures(runtime: Runtime, tmp_path: Path) -> None:
    tries = tmp_path / "tries"

    def flaky(slot_data, message, job_state):
        with tries.open("a") as handle:
            handle.write(".")
        if len(tries.read_text()) < 2:
            raise TimeoutError("upstream slow")
        source.emit("out", ok=True)

    def picky(slot_data, message, job_state):
        raise KeyError("never works")

    source = routine(flaky)
    source.set_error_handler(ErrorHandler(ErrorStrategy.RETRY, max_retries=2, retry_delay=0.01))
    skipper = routine(picky, ("in",), ())
    skipper.set_error_handler(ErrorHandler(ErrorStrategy.CONTINUE))
    flow = Flow("dask-strategies")
    flow.add_routine(source, "flaky")
    flow.add_routine(skipper, "picky")
    flow.connect("flaky", "out", "picky", "in")

    state = runtime.run(flow, timeout=WAIT)

    assert state.status == ExecutionStatus.COMPLETED, state.error
    assert tries.read_text() == ".."
    assert [(e["routine_id"], e["error_type"]) for e in state.errors] == [("picky", "RoutineError")]


def test_worker_logs_are_forwarded_to_the_driver(runtime: Runtime) -> None:
    received: list[dict[str, Any]] = []
    arrived = threading.Event()

    def sink(message: Any) -> None:
        received.append(message.record)
        arrived.set()

    def chatty(slot_data, message, job_state):
        logger.warning("stock low for {}", slot_data["trigger"][0]["sku"])

    sink_id = logger.add(sink, filter=lambda record: "worker" in record["extra"])
    try:
        flow = Flow("dask-logging")
        flow.add_routine(routine(chatty), "chatty")
        state = runtime.run(flow, {"sku": "A-7"}, timeout=WAIT)
        assert state.status == ExecutionStatus.COMPLETED, state.error
        assert arrived.wait(WAIT)  # events travel worker -> scheduler -> driver on their own
    finally:
        logger.remove(sink_id)

    record = received[0]
    assert record["message"] == "stock low for A-7"
    assert record["level"].name == "WARNING"
    assert record["function"] == "chatty"
    assert record["extra"]["job_id"] == state.job_id
    assert record["extra"]["routine_id"] == "chatty"
    assert record["extra"]["worker"].startswith("tcp://")


def test_running_logic_sees_a_cancel(runtime: Runtime, tmp_path: Path) -> None:
    started = tmp_path / "started"

    def patient(slot_data, message, job_state):
        started.touch()
        deadline = time.monotonic() + 10
        while not job_state.cancel_requested and time.monotonic() < deadline:
            time.sleep(0.02)
        job_state.shared_data["saw_cancel"] = job_state.cancel_requested

    flow = Flow("dask-cancel")
    flow.add_routine(routine(patient), "patient")
    begun = time.monotonic()
    state = runtime.exec(flow)
    deadline = time.monotonic() + WAIT
    while not started.exists():  # cross-process handshake: the logic is running
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert runtime.cancel_job(state.job_id)
    runtime.shutdown(wait=True)  # returns once the task's outcome was applied

    assert state.status == ExecutionStatus.CANCELLED
    assert state.shared_data == {"saw_cancel": True}
    assert time.monotonic() - begun < 8


def test_an_unpicklable_routine_fails_before_any_work(runtime: Runtime) -> None:
    guarded = routine(lambda *_: None)
    guarded.mutex = threading.RLock()
    flow = Flow("dask-preflight")
    flow.add_routine(guarded, "guarded")

    with pytest.raises(FlowValidationError, match="routine 'guarded': attribute 'mutex'"):
        runtime.exec(flow)
    assert runtime.list_jobs() == []


def test_without_an_address_a_local_cluster_is_started_and_closed() -> None:
    def where(slot_data, message, job_state):
        job_state.shared_data["pid"] = os.getpid()

    flow = Flow("dask-own-cluster")
    flow.add_routine(routine(where), "where")
    runtime = Runtime(thread_pool_size=1, executor="dask")
    try:
        state = runtime.run(flow, timeout=WAIT)
        executor = runtime.executor("dask")
        assert state.status == ExecutionStatus.COMPLETED, state.error
        assert state.shared_data["pid"] != os.getpid()
        assert len(executor.client.scheduler_info()["workers"]) == 1
        cluster = executor.cluster
    finally:
        runtime.shutdown(wait=True)
    assert cluster.status.name == "closed"


def test_a_dying_worker_fails_only_its_activation(runtime: Runtime) -> None:
    # Last in the module: the nanny needs a moment to bring the killed worker back.
    def fragile(slot_data, message, job_state):
        if slot_data["trigger"][0]["die"]:
            sys.stdout.flush()
            os._exit(1)
        time.sleep(0.2)
        job_state.shared_data["ok"] = True

    flow = Flow("dask-crash")
    flow.add_routine(routine(fragile), "fragile")
    healthy = runtime.exec(flow, {"die": False})
    crashed = runtime.exec(flow, {"die": True})
    assert runtime.wait_until_all_jobs_finished(WAIT)

    assert healthy.status == ExecutionStatus.COMPLETED, healthy.error
    assert crashed.status == ExecutionStatus.FAILED
    assert isinstance(crashed.error, WorkerCrashedError)
    assert f"routine 'fragile' of job {crashed.job_id}" in str(crashed.error)
    again = runtime.run(flow, {"die": False}, timeout=WAIT)
    assert again.status == ExecutionStatus.COMPLETED, again.error


TUTORIAL = Path(__file__).resolve().parents[3] / "examples" / "tutorial"


def test_an_unguarded_tutorial_script_runs_on_a_local_cluster() -> None:
    """Spawned workers must not re-run the driver's script (step 4 has no __main__ guard)."""
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTILUX_")}
    env["ROUTILUX_EXECUTOR"] = "dask"
    result = subprocess.run(
        [sys.executable, str(TUTORIAL / "step4.py")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Count: 1") == 5
    assert "Final count: 1" in result.stdout
    assert "bootstrapping phase" not in result.stderr
