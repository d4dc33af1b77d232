"""Activations on worker processes (process executor, Dask) are children of their job span.

Today the activation span lives on the driver, from the hand-over to the replay of the
activation's effects; the worker tells which worker ran it (see worker_identity.py).
"""

from __future__ import annotations

import os

import pytest
from otel_flows import fan_out_join
from routilux_otel import attributes as names

WAIT = 60.0


def check_remote_tree(telemetry, flow_id: str, executor: str) -> list:
    spans = telemetry.spans()
    (job,) = [span for span in spans if span.name == f"job {flow_id}"]
    activations = [span for span in spans if span is not job]
    assert sorted(
        (
            span.name,
            span.attributes[names.ATTEMPT],
            span.attributes[names.OUTCOME],
            span.parent.span_id == job.context.span_id,
        )
        for span in activations
    ) == [
        ("activation join", 1, "ok", True),
        ("activation left", 1, "error", True),
        ("activation left", 2, "ok", True),
        ("activation right", 1, "ok", True),
        ("activation source", 1, "ok", True),
    ]
    for span in activations:
        assert span.attributes[names.WORKER_EXECUTOR] == executor
        assert span.attributes[names.WORKER_PID] != os.getpid()
    (failed,) = [s for s in activations if s.attributes[names.OUTCOME] == "error"]
    (exception,) = [e for e in failed.events if e.name == "exception"]
    assert exception.attributes["exception.type"] == "ConnectionError"
    assert exception.attributes["exception.message"] == "first attempt always fails"
    assert "raise ConnectionError" in exception.attributes["exception.stacktrace"]
    (source,) = [s for s in activations if s.name == "activation source"]
    assert [(e.name, e.attributes[names.EVENT_NAME]) for e in source.events] == [("emit", "out")]
    return activations


def test_process_executor_activations_are_children_with_the_worker_pid(telemetry) -> None:
    runtime = telemetry.runtime(thread_pool_size=2, executor="process")
    state = runtime.run(fan_out_join("remote-process"), {"n": 4}, timeout=WAIT)
    assert state.status == "completed" and state.shared_data["sum"] == 20
    activations = check_remote_tree(telemetry, "remote-process", "process")
    assert all(isinstance(s.attributes[names.WORKER_PID], int) for s in activations)


def test_dask_activations_are_children_with_the_worker_address(telemetry) -> None:
    pytest.importorskip("routilux_dask")
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=True, dashboard_address=":0"
    ) as cluster:
        (address,) = cluster.scheduler_info["workers"]
        runtime = telemetry.runtime(
            executor="dask",
            executor_options={"address": cluster.scheduler_address, "forward_logs": False},
        )
        state = runtime.run(fan_out_join("remote-dask"), {"n": 4}, timeout=WAIT)
        assert state.status == "completed" and state.shared_data["sum"] == 20
        activations = check_remote_tree(telemetry, "remote-dask", "dask")
        runtime.shutdown()
    assert {s.attributes[names.WORKER_ADDRESS] for s in activations} == {address}
    assert address.startswith("tcp://127.0.0.1:")
