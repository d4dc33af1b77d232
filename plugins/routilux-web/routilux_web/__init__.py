"""routilux-web: a live dashboard and a JSON API over the routilux job store.

``routilux serve`` starts it over a store; ``routilux run FLOW --ui`` runs a flow with it up.
"""

from routilux_web.app import create_app
from routilux_web.dashboard_state import DashboardSettings

__all__ = ["DashboardSettings", "create_app"]
