"""routilux-otel: OpenTelemetry traces and metrics for every routilux_kernel job and activation."""

from routilux_otel.sdk_configuration import configure_from_environment
from routilux_otel.telemetry import VERSION as __version__
from routilux_otel.telemetry import TelemetryPlugin

__all__ = ["TelemetryPlugin", "__version__", "configure_from_environment"]
