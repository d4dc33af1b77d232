"""Activations on worker processes (process executor, Dask) in their job's trace.

On the driver, each activation span is a child of its job span, from the hand-over to the
replay of the activation's effects. Its trace context travels with the activation (the
``remote_activation_context`` hook), and in the worker the installed plugin runs the logic
inside a ``run <routine>`` span, a child of that activation span, naming the worker. The
worker exports it with the OTLP/HTTP exporter named by ``OTEL_*`` to a collector on
127.0.0.1 (collector.py); the driver's spans go to the test's in-memory exporter.
"""

from __future__ import annotations

import os

import pytest
from otel_flows import fan_out_join
from routilux_otel import attributes as names

WAIT = 60.0

EXPECTED_ACTIVATIONS = [
    ("activation join", 1, "ok"),
    ("activation left", 1, "error"),
    ("activation left", 2, "ok"),
    ("activation right", 1, "ok"),
    ("activation source", 1, "ok"),
]


def check_remote_tree(telemetry, collector, flow_id: str, executor: str) -> list:
    """The exact tree: job -> 5 activation spans (driver) -> one worker span each."""
    spans = telemetry.spans()
    (job,) = [span for span in spans if span.name == f"job {flow_id}"]
    activations = [span for span in spans if span is not job]
    assert (
        sorted(
            (span.name, span.attributes[names.ATTEMPT], span.attributes[names.OUTCOME])
            for span in activations
            if span.parent.span_id == job.context.span_id
        )
        == EXPECTED_ACTIVATIONS
    )
    assert len(activations) == 5

    worker_spans = collector.wait_for(5, WAIT)
    by_parent = {span.parent_span_id: span for span in worker_spans}
    assert len(by_parent) == 5
    tree = []
    for activation in activations:
        run = by_parent[activation.context.span_id]
        assert run.trace_id == job.context.trace_id
        assert run.name == activation.name.replace("activation ", "run ")
        assert run.attributes[names.ATTEMPT] == activation.attributes[names.ATTEMPT]
        assert run.attributes[names.OUTCOME] == activation.attributes[names.OUTCOME]
        assert run.attributes[names.JOB_ID] == job.attributes[names.JOB_ID]
        assert run.attributes[names.WORKER_EXECUTOR] == executor
        assert run.attributes[names.WORKER_PID] != os.getpid()
        assert run.service == "routilux-worker"
        tree.append((run.name, run.attributes[names.ATTEMPT], run.attributes[names.OUTCOME]))
    assert sorted(tree) == [
        (name.replace("activation ", "run "), attempt, outcome)
        for name, attempt, outcome in EXPECTED_ACTIVATIONS
    ]

    (failed,) = [s for s in worker_spans if s.attributes[names.OUTCOME] == "error"]
    (exception,) = [attrs for name, attrs in failed.events if name == "exception"]
    assert exception["exception.type"] == "ConnectionError"
    assert exception["exception.message"] == "first attempt always fails"
    assert "raise ConnectionError" in exception["exception.stacktrace"]
    (failed_on_driver,) = [s for s in activations if s.attributes[names.OUTCOME] == "error"]
    (exception,) = [e for e in failed_on_driver.events if e.name == "exception"]
    assert exception.attributes["exception.type"] == "ConnectionError"
    (source,) = [s for s in activations if s.name == "activation source"]
    assert [(e.name, e.attributes[names.EVENT_NAME]) for e in source.events] == [("emit", "out")]
    (join,) = [s for s in activations if s.name == "activation join"]
    (right,) = [s for s in activations if s.name == "activation right"]
    (left_ok,) = [
        s
        for s in activations
        if s.name == "activation left" and s.attributes[names.OUTCOME] == "ok"
    ]
    assert sorted((link.attributes[names.SLOT], link.context.span_id) for link in join.links) == (
        sorted([("left", left_ok.context.span_id), ("right", right.context.span_id)])
    )
    return worker_spans


def test_process_executor_activations_run_in_child_spans_naming_the_worker(
    telemetry, collector
) -> None:
    runtime = telemetry.runtime(thread_pool_size=2, executor="process")
    state = runtime.run(fan_out_join("remote-process"), {"n": 4}, timeout=WAIT)
    assert state.status == "completed" and state.shared_data["sum"] == 20
    worker_spans = check_remote_tree(telemetry, collector, "remote-process", "process")
    assert all(s.attributes[names.WORKER_NAME].startswith("process-worker-") for s in worker_spans)


def test_dask_activations_run_in_child_spans_naming_the_worker_address(
    telemetry, collector
) -> None:
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
        worker_spans = check_remote_tree(telemetry, collector, "remote-dask", "dask")
        runtime.shutdown()
    assert {s.attributes[names.WORKER_ADDRESS] for s in worker_spans} == {address}
    assert address.startswith("tcp://127.0.0.1:")
