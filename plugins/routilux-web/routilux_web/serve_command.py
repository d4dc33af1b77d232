"""``routilux serve``: the dashboard and JSON API over a job store, with uvicorn."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import uvicorn

from routilux_kernel.cli.flow_arguments import CommandInputError
from routilux_kernel.cli.jobs_command import store_url
from routilux_kernel.core.job_store import JobStore, JobStoreError
from routilux_kernel.engine.store_choice import open_store
from routilux_kernel.hooks.registry import registries_for
from routilux_web.app import create_app, package_version
from routilux_web.command_options import TOKEN_ENVIRONMENT_VARIABLE
from routilux_web.dashboard_state import LIVE_INTERVAL, DashboardSettings
from routilux_web.job_control import JobControl
from routilux_web.security import UnsafeBindError, check_bind


def server_token(args: argparse.Namespace) -> str | None:
    return args.token or os.environ.get(TOKEN_ENVIRONMENT_VARIABLE) or None


def open_command_store(args: argparse.Namespace) -> JobStore:
    url, source = store_url(args)
    try:
        return open_store(url, registries_for(args.plugin_manager), source)
    except JobStoreError as exc:
        raise CommandInputError(str(exc)) from None


class DashboardServer(uvicorn.Server):
    """uvicorn, telling the live streams to end as soon as shutdown starts."""

    def __init__(self, config: uvicorn.Config, settings: DashboardSettings) -> None:
        super().__init__(config)
        self.settings = settings

    def handle_exit(self, sig: int, frame: Any) -> None:
        self.settings.stopping.set()
        super().handle_exit(sig, frame)

    def stop(self) -> None:
        """End the server from another thread (``run --ui`` when its jobs are done)."""
        self.should_exit = True


def dashboard_server(args: argparse.Namespace, settings: DashboardSettings) -> DashboardServer:
    """A uvicorn server of the dashboard on ``args.host``/``args.port``, checked for safety."""
    try:
        check_bind(args.host, settings.token)
    except UnsafeBindError as exc:
        raise CommandInputError(str(exc)) from None
    if not 0 <= args.port <= 65535:
        raise CommandInputError(f"--port {args.port}: expected 0-65535")
    config = uvicorn.Config(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level="warning",
        timeout_graceful_shutdown=2,
        lifespan="on",
    )
    return DashboardServer(config, settings)


def announce(server: DashboardServer, host: str) -> None:
    """Print the address once uvicorn listens (with port 0 the OS picked the port)."""
    port = server.servers[0].sockets[0].getsockname()[1] if server.servers else 0
    print(f"routilux web: serving on http://{host}:{port}/", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    token = server_token(args)
    store = open_command_store(args)
    settings = DashboardSettings(
        store=store,
        control=JobControl(store, args.plugin_manager),
        token=token,
        live_interval=float(os.environ.get("ROUTILUX_WEB_LIVE_INTERVAL", LIVE_INTERVAL)),
        version=package_version(),
    )
    server = dashboard_server(args, settings)
    original_startup = server.startup

    async def startup(sockets: Any = None) -> None:
        await original_startup(sockets)
        announce(server, args.host)

    server.startup = startup  # type: ignore[method-assign]
    server.run()
    store.close()
    return 0
