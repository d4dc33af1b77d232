"""The entry point: what the kernel registers when routilux-otel is installed.

The entry point names ``installed_plugin``, which this module computes each time a plugin
manager loads it (a module ``__getattr__``): the tracing :class:`TelemetryPlugin` when the
global providers (the application's, installed before its first Runtime, else those built
from ``OTEL_*``) record traces or metrics, else a :class:`DormantTelemetry` that implements
no hook, so a process that exports nothing pays nothing per job or activation.
``ROUTILUX_DISABLE_PLUGINS=otel`` leaves it out altogether.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from routilux_otel.sdk_configuration import nothing_could_record, signals_in_use

if TYPE_CHECKING:  # imported when tracing is on: a dormant plugin costs no import either
    from routilux_otel.telemetry import TelemetryPlugin


class DormantTelemetry:
    """routilux-otel installed while no provider records anything: no hooks, no cost."""

    def __repr__(self) -> str:
        return "<routilux-otel: dormant (no tracer or meter provider records anything)>"


_active: TelemetryPlugin | None = None
_dormant = DormantTelemetry()


def plugin_for_this_process() -> TelemetryPlugin | DormantTelemetry:
    """The active plugin (one per process, shared by its managers) or the dormant one."""
    global _active
    if _active is None and nothing_could_record():
        return _dormant  # decided without importing OpenTelemetry (~15 ms at start-up)
    tracing, measuring = signals_in_use()
    if not (tracing or measuring):
        return _dormant
    if _active is None:
        from routilux_otel.telemetry import TelemetryPlugin

        _active = TelemetryPlugin()
    return _active


def __getattr__(name: str) -> Any:
    if name == "installed_plugin":
        return plugin_for_this_process()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
