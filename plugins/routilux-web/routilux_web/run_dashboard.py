"""``routilux run … --ui``: the dashboard up, over the run's own store and runtime, while it runs.

The run command's ``run_started`` hook starts uvicorn on a thread of its own; ``run_finished``
stops it once the jobs ended (or the run was interrupted). Jobs started or cancelled from the
page run on the same Runtime as the command's jobs.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from typing import Any

from routilux_kernel.cli.flow_arguments import CommandInputError
from routilux_web.app import package_version
from routilux_web.command_options import TOKEN_ENVIRONMENT_VARIABLE
from routilux_web.dashboard_state import LIVE_INTERVAL, DashboardSettings
from routilux_web.job_control import JobControl
from routilux_web.serve_command import announce, dashboard_server

#: How long stopping the dashboard may take before the run goes on without waiting.
STOP_TIMEOUT = 5.0
START_TIMEOUT = 30.0


class RunDashboard:
    """The dashboard of one ``routilux run``: a uvicorn server on its own thread."""

    def __init__(self, args: argparse.Namespace, runtime: Any, flow: Any) -> None:
        token = args.ui_token or os.environ.get(TOKEN_ENVIRONMENT_VARIABLE) or None
        settings = DashboardSettings(
            store=runtime.store,
            control=JobControl(
                runtime.store, args.plugin_manager, runtime=runtime, flows={flow.flow_id: flow}
            ),
            token=token,
            live_interval=float(os.environ.get("ROUTILUX_WEB_LIVE_INTERVAL", LIVE_INTERVAL)),
            version=package_version(),
        )
        where = argparse.Namespace(host=args.ui_host, port=args.ui_port)
        self.server = dashboard_server(where, settings)
        self.host = args.ui_host
        self._listening = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="routilux-web-ui", daemon=True)
        self._error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()
        if not self._listening.wait(START_TIMEOUT) or self._error is not None:
            self.stop()
            detail = f": {self._error}" if self._error is not None else ""
            raise CommandInputError(
                f"--ui: the dashboard could not listen on {self.host}:"
                f"{self.server.config.port}{detail}"
            )

    def stop(self) -> None:
        self.server.stop()
        self._thread.join(STOP_TIMEOUT)

    def _serve(self) -> None:
        original_startup = self.server.startup

        async def startup(sockets: Any = None) -> None:
            await original_startup(sockets)
            if self.server.started:
                announce(self.server, self.host)
                self._listening.set()

        self.server.startup = startup  # type: ignore[method-assign]
        try:
            self.server.run()
        except BaseException as exc:  # noqa: BLE001 - reported by start() to the command
            self._error = exc
        finally:
            self._listening.set()  # never leave start() waiting
            if self._error is None and not self.server.started:
                print("routilux web: the dashboard did not start", file=sys.stderr)


#: One dashboard per run (keyed by the run's parsed options).
_running: dict[int, RunDashboard] = {}


def start(args: argparse.Namespace, runtime: Any, flow: Any) -> None:
    dashboard = RunDashboard(args, runtime, flow)
    _running[id(args)] = dashboard
    dashboard.start()


def stop(args: argparse.Namespace) -> None:
    dashboard = _running.pop(id(args), None)
    if dashboard is not None:
        dashboard.stop()
