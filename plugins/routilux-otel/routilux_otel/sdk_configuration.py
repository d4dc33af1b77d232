"""Install OpenTelemetry SDK providers from the standard ``OTEL_*`` variables, once.

The application wins: a TracerProvider or MeterProvider it installed (before its first job)
is used as it is. Otherwise the exporters named by ``OTEL_TRACES_EXPORTER`` and
``OTEL_METRICS_EXPORTER`` are loaded from the entry points the SDK and the exporter packages
declare (``console`` ships with the SDK, ``otlp`` with ``opentelemetry-exporter-otlp``), and
everything else (endpoint, headers, service name, batch sizes, export interval) is read by
the SDK and the exporters themselves from their own ``OTEL_*`` variables.
"""

from __future__ import annotations

import os
import sys
import threading
from importlib.util import find_spec
from typing import Any

#: What the OpenTelemetry specification says an unset ``OTEL_*_EXPORTER`` means.
DEFAULT_EXPORTER = "otlp"

_configured = False
_lock = threading.Lock()


def configure_from_environment() -> None:
    """Install SDK providers built from ``OTEL_*`` unless the application installed its own.

    Runs once per process; later calls return at once. ``OTEL_SDK_DISABLED=true`` leaves the
    OpenTelemetry API as the no-op it is by default.
    """
    global _configured
    if _configured:
        return
    with _lock:
        if _configured:
            return
        _configured = True
        if _sdk_disabled():
            return
        if _tracer_provider_unset():
            _install_tracer_provider()
        if _meter_provider_unset():
            _install_meter_provider()


def is_placeholder(provider: Any) -> bool:
    """True for the API's stand-ins (proxy or no-op providers), which record nothing."""
    # The meter proxy class is private; names are the stable way to recognise them all.
    return type(provider).__name__ in _PLACEHOLDERS


_PLACEHOLDERS = frozenset(
    {"ProxyTracerProvider", "NoOpTracerProvider", "_ProxyMeterProvider", "NoOpMeterProvider"}
)


def signals_in_use() -> tuple[bool, bool]:
    """Whether traces and metrics reach anything: (tracing, metrics), after configuring."""
    configure_from_environment()
    if _sdk_disabled():
        return False, False
    from opentelemetry import metrics, trace

    tracing = not is_placeholder(trace.get_tracer_provider())
    return tracing, not is_placeholder(metrics.get_meter_provider())


def nothing_could_record() -> bool:
    """True when no provider could record anything, known without importing OpenTelemetry:
    the application has not imported its API (so it set no provider), and the environment
    names no exporter or provider that :func:`configure_from_environment` would install
    (``OTEL_SDK_DISABLED``, or each ``OTEL_*_EXPORTER`` unset with the default OTLP exporter
    not installed, or ``none``). Anything else is decided by :func:`signals_in_use`."""
    if "opentelemetry.trace" in sys.modules or "opentelemetry.metrics" in sys.modules:
        return False
    if _sdk_disabled():
        return True
    if os.environ.get("OTEL_PYTHON_TRACER_PROVIDER") or os.environ.get(
        "OTEL_PYTHON_METER_PROVIDER"
    ):
        return False
    for variable in ("OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER"):
        names = os.environ.get(variable)
        if names is None:
            if _otlp_installed():
                return False
        elif any(name.strip() not in ("", "none") for name in names.split(",")):
            return False
    return True


def _sdk_disabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def _tracer_provider_unset() -> bool:
    from opentelemetry import trace

    return isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def _meter_provider_unset() -> bool:
    from opentelemetry import metrics

    return type(metrics.get_meter_provider()).__name__ == "_ProxyMeterProvider"


def _install_tracer_provider() -> None:
    exporters = _exporters("OTEL_TRACES_EXPORTER", "opentelemetry_traces_exporter")
    if not exporters:
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create())
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    from opentelemetry import trace

    trace.set_tracer_provider(provider)


def _install_meter_provider() -> None:
    exporters = _exporters("OTEL_METRICS_EXPORTER", "opentelemetry_metrics_exporter")
    if not exporters:
        return
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    readers = [PeriodicExportingMetricReader(exporter) for exporter in exporters]
    from opentelemetry import metrics

    metrics.set_meter_provider(MeterProvider(resource=Resource.create(), metric_readers=readers))


def _exporters(variable: str, group: str) -> list[Any]:
    """The exporters a variable names (comma list); ``none`` or none installed: empty."""
    explicit = variable in os.environ
    if not explicit and not _otlp_installed():
        return []  # the implicit default, and nothing provides it: no metadata to read
    from importlib import metadata  # ~25 ms with the walk of installed distributions

    names = [n.strip() for n in os.environ.get(variable, DEFAULT_EXPORTER).split(",")]
    found = []
    for name in names:
        if not name or name == "none":
            continue
        entry_points = metadata.entry_points(group=group, name=name)
        if not entry_points:
            if explicit:  # asked for by the user: say why nothing arrives
                from loguru import logger  # only on this path: start-up stays light

                installed = sorted(ep.name for ep in metadata.entry_points(group=group))
                logger.warning(
                    "routilux-otel: {}={!r} names no installed exporter (installed: {}); "
                    "for 'otlp' install opentelemetry-exporter-otlp",
                    variable,
                    name,
                    ", ".join(installed) or "none",
                )
            continue
        (entry_point, *_) = entry_points
        try:
            found.append(entry_point.load()())
        except Exception as exc:
            from loguru import logger

            logger.warning(
                "routilux-otel: exporter {!r} of {} could not be created: {}: {}",
                name,
                variable,
                type(exc).__name__,
                exc,
            )
    return found


def _otlp_installed() -> bool:
    """Whether the package behind the default ``otlp`` exporter (OTLP over gRPC, from
    ``opentelemetry-exporter-otlp``) is installed. Without it the entry point lookup can only
    come back empty, and skipping it keeps the metadata reader out of start-up."""
    try:
        return find_spec("opentelemetry.exporter.otlp.proto.grpc") is not None
    except ImportError:  # no opentelemetry.exporter package at all
        return False
