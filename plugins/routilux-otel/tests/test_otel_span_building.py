"""Spans written out whole at their end: true times, the provider's sampler and limits, any tracer.

Activation spans get their identity when they start and are handed to the span processors
when they end (span_building.py); these tests pin what that must not change.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import StatusCode
from otel_flows import fan_out_join
from routilux_otel import TelemetryPlugin
from routilux_otel import attributes as names

from conftest import Telemetry
from routilux_kernel import Flow, Routine

WAIT = 30.0


class KeepFlow(Sampler):
    """Samples the traces of one flow's jobs only, and says so in an attribute."""

    def __init__(self, flow_id: str) -> None:
        self.flow_id = flow_id

    def should_sample(
        self,
        parent_context: Any,
        trace_id: int,
        name: str,
        kind: Any = None,
        attributes: Any = None,
        links: Sequence[Any] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        if name == f"job {self.flow_id}":
            return SamplingResult(Decision.RECORD_AND_SAMPLE, {"sampled.by": "keep-flow"})
        return SamplingResult(Decision.DROP)

    def get_description(self) -> str:
        return f"KeepFlow({self.flow_id})"


class DelegatingTracerProvider(trace.TracerProvider):
    """A tracer provider that is not the SDK's (as a vendor's may be), over an SDK one."""

    def __init__(self, inner: TracerProvider) -> None:
        self.inner = inner

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return DelegatingTracer(self.inner.get_tracer(*args, **kwargs))


class DelegatingTracer(trace.Tracer):
    def __init__(self, inner: trace.Tracer) -> None:
        self.inner = inner

    def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
        return self.inner.start_span(*args, **kwargs)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.start_as_current_span(*args, **kwargs)


def make_telemetry(provider_options: dict[str, Any], wrap: bool = False) -> Telemetry:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider(**provider_options)
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    given = DelegatingTracerProvider(tracer_provider) if wrap else tracer_provider
    return Telemetry(exporter, reader, TelemetryPlugin(given, meter_provider))


@pytest.fixture
def custom_telemetry() -> Iterator[Any]:
    made: list[Telemetry] = []

    def make(provider_options: dict[str, Any], wrap: bool = False) -> Telemetry:
        made.append(make_telemetry(provider_options, wrap))
        return made[-1]

    yield make
    for telemetry in made:
        for runtime in telemetry.runtimes:
            runtime.shutdown(wait=True)


class Timed(Routine):
    """Notes the wall clock (ns) around its work and emits in between."""

    def __init__(self, seen: dict[str, int]) -> None:
        super().__init__()
        self.add_slot("trigger")
        self.add_event("done", ["n"])
        self.seen = seen

    def logic(self, slot_data, policy_message, job_state) -> None:
        self.seen["before"] = time.time_ns()
        time.sleep(0.02)  # a span of a known minimum length, not a synchronisation
        self.emit("done", n=1)
        self.seen["after"] = time.time_ns()


def test_an_activation_span_has_its_true_times_and_the_job_span_as_parent(telemetry) -> None:
    seen: dict[str, int] = {}
    flow = Flow("timed")
    flow.add_routine(Timed(seen), "timed")
    called = time.time_ns()
    telemetry.runtime(thread_pool_size=1).run(flow, {}, timeout=WAIT)
    returned = time.time_ns()
    spans = {span.name: span for span in telemetry.spans()}
    job, activation = spans["job timed"], spans["activation timed"]
    assert called <= job.start_time <= activation.start_time <= seen["before"]
    assert seen["after"] <= activation.end_time <= job.end_time <= returned
    assert activation.end_time - activation.start_time >= 20_000_000
    assert activation.parent.span_id == job.context.span_id
    assert activation.context.trace_id == job.context.trace_id
    assert activation.context.trace_flags.sampled
    (emit,) = activation.events
    assert seen["before"] <= emit.timestamp <= seen["after"]
    assert activation.instrumentation_scope.name == names.SCOPE
    assert activation.resource is job.resource


def test_a_job_started_inside_a_span_of_the_caller_is_its_child(telemetry) -> None:
    flow = Flow("nested")
    flow.add_routine(Timed({}), "timed")
    runtime = telemetry.runtime(thread_pool_size=1)
    caller = telemetry.plugin._own_tracer_provider.get_tracer("caller")
    with caller.start_as_current_span("request") as request:
        runtime.run(flow, {}, timeout=WAIT)
    (job,) = [span for span in telemetry.spans() if span.name == "job nested"]
    assert job.parent.span_id == request.get_span_context().span_id
    assert job.context.trace_id == request.get_span_context().trace_id


def test_the_providers_sampler_decides_for_every_span(custom_telemetry) -> None:
    telemetry = custom_telemetry({"sampler": ParentBased(KeepFlow("kept"))})
    runtime = telemetry.runtime(thread_pool_size=2)
    kept = runtime.run(fan_out_join("kept"), {"n": 1}, timeout=WAIT)
    dropped = runtime.run(fan_out_join("dropped"), {"n": 1}, timeout=WAIT)
    assert kept.status == dropped.status == "completed"
    spans = telemetry.spans()
    assert {span.attributes[names.JOB_ID] for span in spans} == {kept.job_id}
    (job,) = [span for span in spans if span.name == "job kept"]
    assert job.attributes["sampled.by"] == "keep-flow"
    assert sorted(span.name for span in spans if span is not job) == [
        "activation join",
        "activation left",
        "activation left",
        "activation right",
        "activation source",
    ]
    # The dropped job was still measured.
    finished = [
        key
        for key in telemetry.metric_points()
        if key[0] == names.JOBS_FINISHED and (names.FLOW_ID, "dropped") in key[1]
    ]
    assert len(finished) == 1


class DropRoutine(Sampler):
    """Drops the activation spans of one routine: an answer that depends on the span name."""

    def __init__(self, routine_id: str) -> None:
        self.name = f"activation {routine_id}"

    def should_sample(
        self,
        parent_context: Any,
        trace_id: int,
        name: str,
        kind: Any = None,
        attributes: Any = None,
        links: Sequence[Any] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        decision = Decision.DROP if name == self.name else Decision.RECORD_AND_SAMPLE
        return SamplingResult(decision)

    def get_description(self) -> str:
        return f"DropRoutine({self.name})"


def test_a_sampler_that_tells_siblings_apart_is_asked_for_each_span(custom_telemetry) -> None:
    sampler = ParentBased(ALWAYS_ON, local_parent_sampled=DropRoutine("right"))
    telemetry = custom_telemetry({"sampler": sampler})
    state = telemetry.runtime(thread_pool_size=2).run(
        fan_out_join("siblings"), {"n": 1}, timeout=WAIT
    )
    assert state.status == "completed"
    assert sorted(span.name for span in telemetry.spans()) == [
        "activation join",
        "activation left",
        "activation left",
        "activation source",
        "job siblings",
    ]


class Broken(Sampler):
    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        raise RuntimeError("sampler broke")

    def get_description(self) -> str:
        return "Broken"


def test_a_failing_sampler_leaves_activations_running_untraced(custom_telemetry) -> None:
    sampler = ParentBased(ALWAYS_ON, local_parent_sampled=Broken())
    telemetry = custom_telemetry({"sampler": sampler})
    state = telemetry.runtime(thread_pool_size=2).run(
        fan_out_join("broken-sampler"), {"n": 3}, timeout=WAIT
    )
    assert state.status == "completed" and state.shared_data["sum"] == 15
    assert [span.name for span in telemetry.spans()] == ["job broken-sampler"]


def test_an_unsampled_activation_still_runs_inside_a_valid_span_context(custom_telemetry) -> None:
    seen = {}

    class Look(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.add_slot("trigger")

        def logic(self, slot_data, policy_message, job_state) -> None:
            seen["context"] = trace.get_current_span().get_span_context()

    telemetry = custom_telemetry({"sampler": ALWAYS_OFF})
    flow = Flow("never-sampled")
    flow.add_routine(Look(), "look")
    state = telemetry.runtime(thread_pool_size=1).run(flow, {}, timeout=WAIT)
    assert state.status == "completed"
    assert telemetry.spans() == []
    assert seen["context"].is_valid and not seen["context"].trace_flags.sampled


class Chatty(Routine):
    """Emits five items in one activation."""

    def __init__(self) -> None:
        super().__init__()
        self.add_slot("trigger")
        self.add_event("item", ["i"])

    def logic(self, slot_data, policy_message, job_state) -> None:
        for i in range(5):
            self.emit("item", i=i)


@pytest.mark.parametrize("length", [None, 8], ids=["count-limits", "count-and-length-limits"])
def test_the_providers_span_limits_apply_as_to_its_own_spans(custom_telemetry, length) -> None:
    limits = SpanLimits(max_events=2, max_attribute_length=length)
    telemetry = custom_telemetry({"span_limits": limits})
    flow = Flow("chatty")
    flow.add_routine(Chatty(), "chatty")
    state = telemetry.runtime(thread_pool_size=1).run(flow, {}, timeout=WAIT)
    (span,) = [span for span in telemetry.spans() if span.name == "activation chatty"]
    assert len(span.events) == 2 and span.dropped_events == 3
    assert span.events[0].timestamp <= span.events[1].timestamp
    assert len(state.job_id) > 8
    assert span.attributes[names.JOB_ID] == state.job_id[:length]
    assert span.attributes[names.FLOW_ID] == "chatty"


def test_a_batch_links_once_to_each_producer_with_its_item_count(telemetry) -> None:
    from routilux_kernel.activation_policies import batch_size

    class Sink(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.add_slot("input")
            self.set_activation_policy(batch_size(5))

        def logic(self, slot_data, policy_message, job_state) -> None:
            job_state.shared_data["got"] = len(slot_data["input"])

    flow = Flow("batched")
    flow.add_routine(Chatty(), "chatty")
    flow.add_routine(Sink(), "sink")
    flow.connect("chatty", "item", "sink", "input")
    state = telemetry.runtime(thread_pool_size=1).run(flow, {}, timeout=WAIT)
    assert state.shared_data["got"] == 5
    spans = {span.name: span for span in telemetry.spans()}
    (link,) = spans["activation sink"].links
    assert link.context.span_id == spans["activation chatty"].context.span_id
    assert dict(link.attributes) == {names.SLOT: "input", names.LINKED_ITEMS: 5}


def test_a_tracer_that_is_not_the_sdks_gets_the_same_span_tree(custom_telemetry) -> None:
    telemetry = custom_telemetry({}, wrap=True)
    runtime = telemetry.runtime(thread_pool_size=2)
    state = runtime.run(fan_out_join("any-tracer"), {"n": 2}, timeout=WAIT)
    assert state.status == "completed"
    spans = telemetry.spans()
    (job,) = [span for span in spans if span.name == "job any-tracer"]
    assert job.attributes[names.JOB_STATUS] == "completed"
    tree = sorted(
        (
            span.name,
            span.attributes[names.ATTEMPT],
            span.attributes[names.OUTCOME],
            span.parent.span_id == job.context.span_id,
        )
        for span in spans
        if span is not job
    )
    assert tree == [
        ("activation join", 1, "ok", True),
        ("activation left", 1, "error", True),
        ("activation left", 2, "ok", True),
        ("activation right", 1, "ok", True),
        ("activation source", 1, "ok", True),
    ]
    by_name = {span.name: span for span in spans if span.attributes.get(names.OUTCOME) != "error"}
    (failed,) = [span for span in spans if span.attributes.get(names.OUTCOME) == "error"]
    assert failed.status.status_code is StatusCode.ERROR
    assert [event.name for event in failed.events] == ["exception"]
    assert [event.name for event in by_name["activation source"].events] == ["emit"]
    assert sorted(link.context.span_id for link in by_name["activation join"].links) == sorted(
        [by_name["activation left"].context.span_id, by_name["activation right"].context.span_id]
    )


def test_concurrent_jobs_in_threads_never_share_a_span_id(telemetry) -> None:
    runtime = telemetry.runtime(thread_pool_size=4)
    flow = fan_out_join("many-ids")
    threads = [
        threading.Thread(target=lambda: runtime.run(flow, {"n": 1}, timeout=WAIT)) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    spans = telemetry.spans()
    assert len(spans) == 4 * 6
    assert len({span.context.span_id for span in spans}) == len(spans)


def test_a_processor_that_acts_when_a_span_starts_sees_every_span_start():
    # A processor that stamps attributes in on_start (as baggage processors do) must get
    # the SDK's own writable spans, also when it is added after the plugin was set up.
    from opentelemetry.sdk.trace import SpanProcessor

    class Stamp(SpanProcessor):
        def on_start(self, span: Any, parent_context: Any = None) -> None:
            span.set_attribute("stamped", True)

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    telemetry = Telemetry(
        exporter, InMemoryMetricReader(), TelemetryPlugin(provider, meter_provider)
    )
    runtime = telemetry.runtime(thread_pool_size=2)
    runtime.run(fan_out_join("before"), {"n": 1}, timeout=WAIT)
    before = telemetry.spans()
    provider.add_span_processor(Stamp())
    exporter.clear()
    runtime.run(fan_out_join("after"), {"n": 1}, timeout=WAIT)
    after = telemetry.spans()

    assert len(before) == len(after) == 6  # the job, source, left twice, right, join
    assert not any("stamped" in span.attributes for span in before)
    assert all(span.attributes.get("stamped") is True for span in after)
    assert sorted(s.name.replace("after", "before") for s in after) == sorted(
        s.name for s in before
    )
    runtime.shutdown(wait=True)
