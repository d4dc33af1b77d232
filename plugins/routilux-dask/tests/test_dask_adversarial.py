"""Adversarial tests of the dask executor's log forwarding.

Logic binds its own ``worker`` key, and a LocalCluster whose workers share the driver's
process (``processes=False``) must leave the driver's loguru configuration alone.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import dask
import pytest
from distributed import LocalCluster
from loguru import logger
from routilux_dask import DaskExecutor

from routilux_kernel import ExecutionStatus, Flow, Routine, Runtime

WAIT = 20.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        local = LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
    try:
        yield local
    finally:
        local.close()


def single(logic: Any) -> Flow:
    routine = Routine()
    routine.add_slot("trigger")
    routine.set_logic(logic)
    flow = Flow("dask-logs")
    flow.add_routine(routine, "chatty")
    return flow


class Collected:
    """A driver-side loguru sink that keeps the records made inside jobs."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.arrived = threading.Condition()

    def __call__(self, message: Any) -> None:
        with self.arrived:
            self.records.append(message.record)
            self.arrived.notify_all()

    def wait_for(self, text: str, count: int = 1, timeout: float = WAIT) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.of(text)) >= count, timeout)

    def of(self, text: str) -> list[dict[str, Any]]:
        return [record for record in self.records if record["message"] == text]


@pytest.fixture
def collected() -> Iterator[Collected]:
    sink = Collected()
    sink_id = logger.add(sink, filter=lambda record: "job_id" in record["extra"])
    try:
        yield sink
    finally:
        logger.remove(sink_id)


def test_a_record_whose_logic_bound_a_worker_key_still_reaches_the_driver(
    cluster: LocalCluster, collected: Collected
) -> None:
    def chatty(slot_data, message, job_state):
        logger.bind(worker="alice").warning("bound its own worker key")
        logger.warning("plain")

    options = {"address": cluster.scheduler_address}
    with Runtime(executor="dask", executor_options=options) as runtime:
        state = runtime.run(single(chatty), timeout=WAIT)
        assert state.status == ExecutionStatus.COMPLETED, state.error
        assert collected.wait_for("plain")  # records of one worker arrive in order

    [record] = collected.of("bound its own worker key")
    assert record["extra"]["job_id"] == state.job_id
    assert record["extra"]["worker"]  # one value, not a TypeError that drops the record


def test_workers_in_the_driver_process_do_not_forward_the_drivers_own_records(
    collected: Collected,
) -> None:
    """With ``processes=False`` a record made in logic already reaches the driver's sinks;
    forwarding it as well would deliver it twice (and re-forward the copy)."""

    def chatty(slot_data, message, job_state):
        logger.warning("once")

    executor = DaskExecutor(max_workers=1, cluster_options={"processes": False})
    with Runtime(executor=executor) as runtime:
        state = runtime.run(single(chatty), timeout=WAIT)
        assert state.status == ExecutionStatus.COMPLETED, state.error
        assert collected.wait_for("once")
        # A forwarded copy would arrive within milliseconds; give it a moment to show up.
        collected.wait_for("once", count=2, timeout=1.0)
        logger.bind(job_id="-").warning("after")  # the driver's own record, outside jobs
        collected.wait_for("after", count=2, timeout=1.0)

    assert len(collected.of("once")) == 1, [r["extra"] for r in collected.of("once")]
    assert len(collected.of("after")) == 1


def test_a_shut_down_executor_refuses_work_instead_of_starting_a_new_cluster() -> None:
    executor = DaskExecutor(max_workers=1)
    executor.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        executor.submit(print, "late")
    assert executor.cluster is None and executor.client is None
