"""What every request handler of one dashboard shares: the store, job control, secrets."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field

from starlette.requests import Request

from routilux_kernel.core.job_store import JobStore
from routilux_web.job_control import JobControl

#: Seconds between two looks at the store for the live view.
LIVE_INTERVAL = 0.5


@dataclass
class DashboardSettings:
    """One dashboard over one store. ``token``: required from every client when set."""

    store: JobStore
    control: JobControl
    token: str | None = None
    live_interval: float = LIVE_INTERVAL
    version: str = "0"
    csrf_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    stopping: asyncio.Event = field(default_factory=asyncio.Event)


def dashboard_of(request: Request) -> DashboardSettings:
    dashboard: DashboardSettings = request.app.state.dashboard
    return dashboard
