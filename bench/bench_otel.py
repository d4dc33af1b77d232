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
WORKLOADS = [WITHOUT, DORMANT, TRACED, SAMPLED]

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
    return rows


if __name__ == "__main__":
    from bench._harness import format_table

    print(format_table(run(quick=False)))
