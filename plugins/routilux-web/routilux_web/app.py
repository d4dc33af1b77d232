"""The Starlette application of the dashboard: pages, the JSON API and the shipped assets."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from routilux_web import api, pages
from routilux_web.dashboard_state import DashboardSettings
from routilux_web.security import TokenMiddleware

STATIC = Path(__file__).parent / "static"


def package_version() -> str:
    try:
        return version("routilux-web")
    except PackageNotFoundError:
        return "0+unknown"


def create_app(settings: DashboardSettings) -> Starlette:
    """The dashboard over ``settings.store``; with ``settings.token`` every request needs it."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        settings.stopping.set()  # ends the live streams still open
        settings.control.close()

    middleware = [Middleware(TokenMiddleware, token=settings.token)] if settings.token else []
    app = Starlette(
        routes=[*api.ROUTES, *pages.ROUTES, Mount("/static", StaticFiles(directory=STATIC))],
        middleware=middleware,
        lifespan=lifespan,
    )
    app.state.dashboard = settings
    return app
