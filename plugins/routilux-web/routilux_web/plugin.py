"""The hook implementations of routilux-web: the ``serve`` command and ``run --ui``."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import Any

from routilux_kernel import hookimpl
from routilux_web.command_options import add_serve_arguments, add_ui_arguments


def _serve(args: argparse.Namespace) -> int:
    # Imported when the command runs, so that other commands do not load Starlette.
    return int(importlib.import_module("routilux_web.serve_command").run(args))


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    add_serve_arguments(parser)


@hookimpl
def register_commands(register: Callable[..., Any]) -> None:
    register(
        "serve",
        _serve,
        help="serve the dashboard and JSON API over the job store (http://127.0.0.1:8765/)",
        add_arguments=_serve_arguments,
    )


@hookimpl
def extend_command(command: str, parser: argparse.ArgumentParser) -> None:
    if command == "run":
        add_ui_arguments(parser)


@hookimpl
def run_started(args: argparse.Namespace, runtime: Any, flow: Any) -> None:
    if getattr(args, "ui", False):
        importlib.import_module("routilux_web.run_dashboard").start(args, runtime, flow)


@hookimpl
def run_finished(args: argparse.Namespace, runtime: Any, flow: Any, job_states: Any) -> None:
    if getattr(args, "ui", False):
        importlib.import_module("routilux_web.run_dashboard").stop(args)
