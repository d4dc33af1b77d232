"""routilux-web: a live dashboard and a JSON API over the routilux job store.

``routilux serve`` starts it over a store; ``routilux run FLOW --ui`` runs a flow with it up.
Starlette and the app load on first use, so the entry point costs every Runtime nothing.
"""

from typing import Any

__all__ = ["DashboardSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from routilux_web.app import create_app

        return create_app
    if name == "DashboardSettings":
        from routilux_web.dashboard_state import DashboardSettings

        return DashboardSettings
    raise AttributeError(f"module 'routilux_web' has no attribute {name!r}")
