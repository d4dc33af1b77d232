"""routilux-otel: OpenTelemetry traces and metrics for every routilux_kernel job and activation.

``TelemetryPlugin`` is imported on first use, so loading the entry point of a dormant plugin
(nothing exported) stays cheap at start-up.
"""

from typing import Any

from routilux_otel.sdk_configuration import configure_from_environment

__version__ = "0.2.0"

__all__ = ["TelemetryPlugin", "__version__", "configure_from_environment"]


def __getattr__(name: str) -> Any:
    if name == "TelemetryPlugin":
        from routilux_otel.telemetry import TelemetryPlugin

        return TelemetryPlugin
    raise AttributeError(f"module 'routilux_otel' has no attribute {name!r}")
