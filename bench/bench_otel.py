"""What routilux-otel costs: W2 without it next to W2 traced and measured by it.

W2 is bench_kernel's chain of 20 routines, 200 jobs, ``Runtime(thread_pool_size=4)``, in
routed events per second. The plugin is given through ``Runtime(plugins=[...])`` on a
manager with only the built-in plugins, with its own SDK providers: every span goes to a
no-op exporter through a ``BatchSpanProcessor`` (what a deployment uses), every metric to
an in-memory reader that is never read. A second row uses a 10 % trace-id ratio sampler,
the usual production setting, to show what recording every span costs. The "dormant" row
is what the installed entry point registers when no provider records anything (no
exporter installed, ``OTEL_*_EXPORTER=none``, ``OTEL_SDK_DISABLED=true``): an object with
no hook, so the kernel skips every lifecycle hook; its target is "within noise" of W2.

The "SDK floor" rows time the OpenTelemetry SDK alone, single-threaded, with no plugin or
kernel code: what one activation needs of it at the least (a sampling decision, one span
with its emit event and link handed to the same BatchSpanProcessor, one histogram
record), next to ``Tracer.start_span`` + ``end``. The "best possible" row adds that floor
to W2's own time per routed event: the most any plugin recording every span through
this SDK could reach on this machine.

Measured (six runs, each best of 3 alternating, shared 2-core machine): every span
0.19-0.26x (+35-44 us per routed event; the version before span_building.py: 0.09-0.10x
in the same session); 10 % sampled 0.2-0.34x; SDK floor per activation 14-19 us against
W2's 9.7-12.7 us per routed event, so at best 0.36-0.43x. The 0.6x target is missed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench._harness import best_of, row, selected
from bench.bench_hooks import seconds_for
from bench.bench_kernel import chain_flow
from routilux_kernel import create_plugin_manager

WITHOUT = "W2 otel: no plugin"
DORMANT = "W2 otel: installed, nothing exported (dormant)"
TRACED = "W2 otel: every span, no-op exporter"
SAMPLED = "W2 otel: 10% of traces sampled"
FLOOR_START_SPAN = "SDK floor: start_span + end, BatchSpanProcessor"
FLOOR_READABLE = "SDK floor: sampler + ReadableSpan to BatchSpanProcessor"
FLOOR_HISTOGRAM = "SDK floor: histogram record, 3 attributes"
BEST_POSSIBLE = "W2 otel: best possible (W2 + SDK floor per activation)"
WORKLOADS = [WITHOUT, DORMANT, TRACED, SAMPLED, FLOOR_START_SPAN, BEST_POSSIBLE]

LENGTH = 20
POOL = 4


def telemetry_plugin(sampling_ratio: float | None) -> tuple[Any, list[Any]]:
    """A TelemetryPlugin on fresh SDK providers; returns it and the providers to shut down."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    from routilux_otel import TelemetryPlugin

    class NoOpExporter(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    sampler = None if sampling_ratio is None else ParentBased(TraceIdRatioBased(sampling_ratio))
    tracer_provider = TracerProvider(sampler=sampler) if sampler else TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(NoOpExporter()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    plugin = TelemetryPlugin(tracer_provider, meter_provider)
    return plugin, [tracer_provider, meter_provider]


def sdk_floor_microseconds(calls: int) -> dict[str, float]:
    """Microseconds per call of the SDK work one traced activation cannot do without."""
    import time

    from opentelemetry import trace
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags

    # The providers of the traced rows: the same BatchSpanProcessor and no-op exporter.
    _, (tracer_provider, meter_provider) = telemetry_plugin(None)
    tracer = tracer_provider.get_tracer("bench")
    histogram = meter_provider.get_meter("bench").create_histogram("bench.duration")
    job = tracer.start_span("job")
    parent = job.get_span_context()
    job_context = trace.set_span_in_context(job)
    identity = {"routilux.flow.id": "f", "routilux.job.id": "j", "routilux.routine.id": "r"}
    by_routine = {"routilux.flow.id": "f", "routilux.routine.id": "r", "outcome": "ok"}

    def start_span() -> None:
        tracer.start_span("activation r", context=job_context, attributes=identity).end()

    def readable_span() -> None:
        result = tracer.sampler.should_sample(job_context, parent.trace_id, "activation r")
        flags = TraceFlags(TraceFlags.SAMPLED if result.decision.is_sampled() else 0)
        context = SpanContext(
            parent.trace_id,
            tracer.id_generator.generate_span_id(),
            False,
            flags,
            result.trace_state,
        )
        tracer.span_processor.on_end(
            ReadableSpan(
                "activation r",
                context,
                parent,
                tracer.resource,
                identity,
                (Event("emit", {"routilux.event.name": "out"}, 1),),
                (Link(parent, {"routilux.slot": "input"}),),
                SpanKind.INTERNAL,
                start_time=1,
                end_time=2,
            )
        )

    def record() -> None:
        histogram.record(0.001, by_routine)

    figures = {}
    try:
        for name, call in [
            (FLOOR_START_SPAN, start_span),
            (FLOOR_READABLE, readable_span),
            (FLOOR_HISTOGRAM, record),
        ]:
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                for _ in range(calls):
                    call()
                best = min(best, time.perf_counter() - start)
            figures[name] = best / calls * 1e6
    finally:
        tracer_provider.shutdown()
        meter_provider.shutdown()
    return figures


def traced_seconds(flow: Any, jobs: int, base: Any, batches: int, ratio: float | None) -> float:
    plugin, providers = telemetry_plugin(ratio)
    try:
        return seconds_for(flow, jobs, [plugin], base, batches)
    finally:
        for provider in providers:
            provider.shutdown()


def run(quick: bool) -> list[dict[str, Any]]:
    try:
        import routilux_otel  # noqa: F401
    except ImportError:
        return [row(TRACED, "events/s", float("nan"), None, ">= 0.6x", "routilux-otel missing")]
    jobs, batches = (50, 2) if quick else (200, 5)
    routed = jobs * (LENGTH - 1)
    flow = chain_flow(LENGTH)
    base = create_plugin_manager(load_entry_points=False)
    size = f"{jobs} jobs x {LENGTH} routines, pool {POOL}"
    rows = []
    without, traced, _ = best_of(
        lambda: seconds_for(flow, jobs, [], base, batches),
        lambda: traced_seconds(flow, jobs, base, batches, None),
        quick,
    )
    rows.append(row(WITHOUT, "events/s", routed / without, None, "", f"{size}; reference"))
    if selected(DORMANT):
        from routilux_otel.plugin import DormantTelemetry

        floor, dormant, _ = best_of(
            lambda: seconds_for(flow, jobs, [], base, batches),
            lambda: seconds_for(flow, jobs, [DormantTelemetry()], base, batches),
            quick,
        )
        per_event = (dormant - floor) / routed * 1e6
        rows.append(
            row(
                DORMANT,
                "events/s",
                routed / dormant,
                routed / floor,
                "~1.0x (noise)",
                f"{size}; {per_event:+.2f} us per routed event; no hook registered",
            )
        )
    if selected(TRACED):
        per_event = (traced - without) / routed * 1e6
        rows.append(
            row(
                TRACED,
                "events/s",
                routed / traced,
                routed / without,
                ">= 0.6x",
                f"{size}; {per_event:+.1f} us per routed event (21 spans, 19 emits per job)",
            )
        )
    if selected(SAMPLED):
        sampled = min(traced_seconds(flow, jobs, base, batches, 0.1) for _ in range(2))
        per_event = (sampled - without) / routed * 1e6
        rows.append(
            row(
                SAMPLED,
                "events/s",
                routed / sampled,
                routed / without,
                ">= 0.6x",
                f"{size}; {per_event:+.1f} us per routed event",
            )
        )
    if selected(FLOOR_START_SPAN) or selected(BEST_POSSIBLE):
        floor = sdk_floor_microseconds(2_000 if quick else 20_000)
        w2_us = without / routed * 1e6
        budget = w2_us / 0.6 - w2_us
        for name, microseconds in floor.items():
            note = f"single thread; W2 routed event: {w2_us:.1f} us, plugin budget at 0.6x: "
            rows.append(row(name, "us/call", microseconds, None, "", note + f"{budget:.1f} us"))
        least = floor[FLOOR_READABLE] + floor[FLOOR_HISTOGRAM]
        rows.append(
            row(
                BEST_POSSIBLE,
                "events/s",
                1e6 / (w2_us + least),
                routed / without,
                ">= 0.6x",
                f"{w2_us:.1f} us W2 + {least:.1f} us SDK per activation; no hook, no plugin code",
            )
        )
    return rows


if __name__ == "__main__":
    from bench._harness import format_table

    print(format_table(run(quick=False)))
