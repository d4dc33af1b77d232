"""The span tree of real runs on the thread executor: jobs, attempts, emits, links."""

from __future__ import annotations

import threading

from opentelemetry.trace import StatusCode
from otel_flows import Burst, GatedSink, fan_out_join
from routilux_otel import attributes as names

from routilux_kernel import Flow, Routine

WAIT = 30.0


def by_name(spans, name):
    return [span for span in spans if span.name == name]


def test_fan_out_join_with_one_retry_makes_exactly_this_span_tree(telemetry) -> None:
    runtime = telemetry.runtime(thread_pool_size=2)
    state = runtime.run(fan_out_join("fan-join"), {"n": 5}, timeout=WAIT)
    assert state.status == "completed" and state.shared_data["sum"] == 25

    spans = telemetry.spans()
    (job,) = by_name(spans, "job fan-join")
    assert job.parent is None
    tree = sorted(
        (
            span.name,
            span.attributes[names.ATTEMPT],
            span.attributes[names.OUTCOME],
            span.parent.span_id == job.context.span_id,
            span.context.trace_id == job.context.trace_id,
        )
        for span in spans
        if span is not job
    )
    assert tree == [
        ("activation join", 1, "ok", True, True),
        ("activation left", 1, "error", True, True),
        ("activation left", 2, "ok", True, True),
        ("activation right", 1, "ok", True, True),
        ("activation source", 1, "ok", True, True),
    ]


def test_the_failed_attempt_carries_its_exception_and_the_retry_follows_it(telemetry) -> None:
    runtime = telemetry.runtime(thread_pool_size=2)
    runtime.run(fan_out_join("fan-join-errors"), {"n": 1}, timeout=WAIT)
    first, second = sorted(
        by_name(telemetry.spans(), "activation left"),
        key=lambda span: span.attributes[names.ATTEMPT],
    )
    assert first.status.status_code is StatusCode.ERROR
    assert first.status.description == "ConnectionError: first attempt always fails"
    (exception,) = [event for event in first.events if event.name == "exception"]
    assert exception.attributes["exception.type"] == "ConnectionError"
    assert exception.attributes["exception.message"] == "first attempt always fails"
    assert second.status.status_code is StatusCode.UNSET
    assert not [event for event in second.events if event.name == "exception"]
    assert first.end_time <= second.start_time


def test_emits_are_span_events_and_consumers_link_to_their_producers(telemetry) -> None:
    runtime = telemetry.runtime(thread_pool_size=2)
    runtime.run(fan_out_join("fan-join-links"), {"n": 2}, timeout=WAIT)
    spans = telemetry.spans()
    (source,) = by_name(spans, "activation source")
    (right,) = by_name(spans, "activation right")
    left_ok = next(
        s for s in by_name(spans, "activation left") if s.attributes[names.OUTCOME] == "ok"
    )
    (join,) = by_name(spans, "activation join")

    assert [(e.name, dict(e.attributes)) for e in source.events] == [
        ("emit", {names.EVENT_NAME: "out", names.EVENT_SIZE: 1})
    ]
    assert [(e.name, e.attributes[names.EVENT_NAME]) for e in left_ok.events] == [("emit", "done")]
    # Both attempts of left consumed the same item of source: each links to it.
    for consumer in [*by_name(spans, "activation left"), right]:
        assert [(link.context.span_id, dict(link.attributes)) for link in consumer.links] == [
            (source.context.span_id, {names.SLOT: "input", names.LINKED_ITEMS: 1})
        ]
    assert sorted(
        (link.attributes[names.SLOT], link.context.span_id) for link in join.links
    ) == sorted([("left", left_ok.context.span_id), ("right", right.context.span_id)])


def test_job_span_attributes_for_a_completed_and_a_failed_job(telemetry) -> None:
    class Boom(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.add_slot("trigger")

        def logic(self, slot_data, policy_message, job_state) -> None:
            raise ValueError("no good input")

    failing = Flow("always-fails")
    failing.add_routine(Boom(), "boom")
    runtime = telemetry.runtime(thread_pool_size=2)
    ok = runtime.run(fan_out_join("fan-join-attrs"), {"n": 1}, timeout=WAIT)
    failed = runtime.run(failing, {}, timeout=WAIT)
    assert failed.status == "failed"

    spans = {span.name: span for span in telemetry.spans() if span.name.startswith("job ")}
    good = spans["job fan-join-attrs"]
    assert dict(good.attributes) == {
        names.FLOW_ID: "fan-join-attrs",
        names.JOB_ID: ok.job_id,
        names.JOB_ENTRY_PARAMS_SIZE: 1,
        names.JOB_STATUS: "completed",
    }
    assert good.status.status_code is StatusCode.UNSET
    bad = spans["job always-fails"]
    assert dict(bad.attributes) == {
        names.FLOW_ID: "always-fails",
        names.JOB_ID: failed.job_id,
        names.JOB_ENTRY_PARAMS_SIZE: 0,
        names.JOB_STATUS: "failed",
        names.JOB_ERROR_ROUTINE: "boom",
    }
    assert bad.status.status_code is StatusCode.ERROR
    assert bad.status.description == "ValueError: no good input"
    assert [e.attributes["exception.type"] for e in bad.events] == ["ValueError"]


def test_concurrent_jobs_get_separate_traces(telemetry) -> None:
    runtime = telemetry.runtime(thread_pool_size=4)
    states = [runtime.exec(fan_out_join("fan-join-many"), {"n": i}) for i in range(6)]
    assert runtime.wait_until_all_jobs_finished(WAIT)
    assert [s.shared_data["sum"] for s in states] == [5 * i for i in range(6)]
    spans = telemetry.spans()
    jobs = {span.attributes[names.JOB_ID]: span for span in by_name(spans, "job fan-join-many")}
    assert set(jobs) == {state.job_id for state in states}
    for job_id, job in jobs.items():
        children = [
            s for s in spans if s.parent is not None and s.parent.span_id == job.context.span_id
        ]
        assert len(children) == 5
        assert {s.attributes[names.JOB_ID] for s in children} == {job_id}
        assert {s.context.trace_id for s in children} == {job.context.trace_id}


def test_logic_runs_inside_its_activation_span(telemetry) -> None:
    seen = {}

    class Inner(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.add_slot("trigger")

        def logic(self, slot_data, policy_message, job_state) -> None:
            from opentelemetry import trace

            # What a user's instrumentation (or its own spans) would take as parent.
            seen["parent"] = trace.get_current_span().get_span_context().span_id

    flow = Flow("user-spans")
    flow.add_routine(Inner(), "inner")
    telemetry.runtime(thread_pool_size=1).run(flow, {}, timeout=WAIT)
    (activation,) = by_name(telemetry.spans(), "activation inner")
    assert seen["parent"] == activation.context.span_id


def test_concurrent_activations_of_one_routine_get_their_own_spans_and_emits(
    telemetry,
) -> None:
    both_running = threading.Barrier(2, timeout=WAIT)

    class Fan(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.add_slot("trigger")
            self.add_event("item", ["i"])

        def logic(self, slot_data, policy_message, job_state) -> None:
            self.emit("item", i=1)
            self.emit("item", i=2)

    class Work(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.add_slot("input")
            self.add_event("done", ["i"])

        def logic(self, slot_data, policy_message, job_state) -> None:
            both_running.wait()  # two activations of this routine run at once
            i = slot_data["input"][0]["i"]
            for _ in range(i):  # activation i emits i times
                self.emit("done", i=i)

    flow = Flow("concurrent-spans")
    flow.add_routine(Fan(), "fan")
    flow.add_routine(Work().set_concurrency(2), "work")
    flow.connect("fan", "item", "work", "input")
    state = telemetry.runtime(thread_pool_size=3).run(flow, {}, timeout=WAIT)
    assert state.status == "completed"
    spans = telemetry.spans()
    (fan,) = by_name(spans, "activation fan")
    work = by_name(spans, "activation work")
    assert len(work) == 2 and len({s.context.span_id for s in work}) == 2
    # Each span holds the emits of its own activation: 1 and 2 of them.
    assert sorted(len(s.events) for s in work) == [1, 2]
    for span in work:
        assert [dict(link.attributes) for link in span.links] == [
            {names.SLOT: "input", names.LINKED_ITEMS: 1}
        ]
        assert span.links[0].context.span_id == fan.context.span_id


def test_queue_depth_gauge_counts_items_waiting_in_a_slot(telemetry, attrs) -> None:
    started, gate = threading.Event(), threading.Event()
    flow = Flow("queue-depth")
    flow.add_routine(Burst(started, more=3), "burst")
    flow.add_routine(GatedSink(started, gate), "sink")
    flow.connect("burst", "item", "sink", "input")
    runtime = telemetry.runtime(thread_pool_size=2)
    state = runtime.exec(flow, {})
    try:
        deadline = threading.Event()
        # The burst has emitted its 3 items once its activation span ended.
        for _ in range(1000):
            if [s for s in telemetry.spans() if s.name == "activation burst"]:
                break
            deadline.wait(0.01)
        key = (
            names.QUEUE_DEPTH,
            attrs(
                routilux_flow_id="queue-depth", routilux_routine_id="sink", routilux_slot="input"
            ),
        )
        assert telemetry.metric_points()[key].value == 3
    finally:
        gate.set()
    assert state.wait(WAIT) and state.status == "completed"
    assert sorted(state.shared_log) == [0, 1, 2, 3]
    # A finished job has no queues left to report.
    assert not [k for k in telemetry.metric_points() if k[0] == names.QUEUE_DEPTH]
