"""The entry point: the instance the kernel registers when routilux-otel is installed.

It traces through the global OpenTelemetry providers (the application's, else those built
from ``OTEL_*``); ``ROUTILUX_DISABLE_PLUGINS=otel`` leaves it out.
"""

from __future__ import annotations

from routilux_otel.telemetry import TelemetryPlugin

installed_plugin = TelemetryPlugin()
