"""In-memory OpenTelemetry providers and runtimes that trace into them.

Each test gets its own TracerProvider (in-memory span exporter) and MeterProvider
(in-memory metric reader) handed to a :class:`TelemetryPlugin` through ``Runtime(plugins=)``;
the installed entry point is left out of that runtime's plugin manager so spans are not
made twice. Worker processes load the installed plugin as users get it, configured by the
``OTEL_*`` variables a test sets (see collector.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from collector import collector  # noqa: F401 - the fixture, for every test here
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from routilux_otel import TelemetryPlugin

from routilux_kernel import Runtime, create_plugin_manager

WAIT = 30.0


@dataclass
class Telemetry:
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    plugin: TelemetryPlugin
    runtimes: list[Runtime] = field(default_factory=list)

    def runtime(self, **options: Any) -> Runtime:
        # The installed entry point is left out in this (driver) process: loading it would
        # configure global providers from the OTEL_* variables meant for worker processes.
        before = os.environ.get("ROUTILUX_DISABLE_PLUGINS")
        os.environ["ROUTILUX_DISABLE_PLUGINS"] = "otel"
        try:
            pm = create_plugin_manager()
        finally:
            if before is None:
                del os.environ["ROUTILUX_DISABLE_PLUGINS"]
            else:
                os.environ["ROUTILUX_DISABLE_PLUGINS"] = before
        runtime = Runtime(plugin_manager=pm, plugins=[self.plugin], **options)
        self.runtimes.append(runtime)
        return runtime

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def metric_points(self) -> dict[tuple[str, frozenset[tuple[str, Any]]], Any]:
        """``{(metric name, attributes): data point}`` of everything collected now."""
        points = {}
        data = self.reader.get_metrics_data()
        for resource_metrics in data.resource_metrics if data else ():
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    for point in metric.data.data_points:
                        key = (metric.name, frozenset(point.attributes.items()))
                        points[key] = point
        return points


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    collected = Telemetry(exporter, reader, TelemetryPlugin(tracer_provider, meter_provider))
    try:
        yield collected
    finally:
        for runtime in collected.runtimes:
            runtime.shutdown(wait=True)
        tracer_provider.shutdown()
        meter_provider.shutdown()


@pytest.fixture
def attrs() -> Callable[..., frozenset[tuple[str, Any]]]:
    return lambda **kw: frozenset((key.replace("_", "."), value) for key, value in kw.items())
