"""The built-in CLI commands, registered through the same hook third-party commands use.

The command modules are imported only when a command runs, so creating a plugin manager
(which every Runtime does) does not pay for the CLI, and ``routilux --help`` loads only
their options (``command_arguments``), not the flow-file layer or the runtime.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import Any

from routilux_kernel.hooks.specs import hookimpl


def _lazy(module: str, attribute: str) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        return getattr(importlib.import_module(f"routilux_kernel.cli.{module}"), attribute)(*args)

    call.__qualname__ = call.__name__ = f"{module}.{attribute}"
    return call


def _add_json(parser: argparse.ArgumentParser) -> None:
    _lazy("command_arguments", "add_json_argument")(parser)


@hookimpl
def register_commands(register: Callable[..., None]) -> None:
    register(
        "run",
        _lazy("run_command", "run"),
        help="run jobs of a flow file and report how they went",
        add_arguments=_lazy("command_arguments", "add_run_arguments"),
    )
    register(
        "jobs",
        _lazy("jobs_command", "run"),
        help="list, show, prune and resume jobs kept in the job store",
        add_arguments=_lazy("command_arguments", "add_jobs_arguments"),
    )
    register(
        "validate",
        _lazy("validate_command", "run"),
        help="check a flow file without running it; lists every problem",
        add_arguments=_lazy("command_arguments", "add_validate_arguments"),
    )
    register(
        "graph",
        _lazy("graph_command", "run"),
        help="print a flow file as a Mermaid or Graphviz (dot) graph",
        add_arguments=_lazy("command_arguments", "add_graph_arguments"),
    )
    register(
        "routines",
        _lazy("listing_commands", "run_routines"),
        help="list registered routines with their slots, events and config keys",
        add_arguments=_add_json,
    )
    register(
        "plugins",
        _lazy("listing_commands", "run_plugins"),
        help="list plugins, their versions, hooks and what each registered",
        add_arguments=_add_json,
    )
