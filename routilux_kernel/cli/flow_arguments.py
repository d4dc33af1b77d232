"""What the flow-file commands share: arguments, loading, --param parsing, executor choice."""

from __future__ import annotations

import argparse
import json
from typing import Any

from routilux_kernel.core.flow import Flow
from routilux_kernel.core.routine import Routine
from routilux_kernel.engine.config import configured_executor
from routilux_kernel.executors.contract import ExecutorCapabilities
from routilux_kernel.flowfiles.files import load_flow_file, registered_only_configured
from routilux_kernel.hooks.registry import Registries

EXIT_OK = 0
EXIT_JOB_FAILED = 1
EXIT_BAD_INPUT = 2


class CommandInputError(Exception):
    """Bad input on the command line (unknown name, malformed --param): exit code 2."""


def load_flow(args: argparse.Namespace) -> Flow:
    """The flow of ``args.flow_file``; raises FlowFileError listing every problem."""
    registered_only = bool(args.registered_only) or registered_only_configured()
    return load_flow_file(
        args.flow_file, plugin_manager=args.plugin_manager, registered_only=registered_only
    )


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """``key=value`` strings -> a dict; values are JSON when they parse, else strings."""
    params: dict[str, Any] = {}
    for item in items or ():
        key, equals, text = item.partition("=")
        key = key.strip()
        if not equals or not key:
            raise CommandInputError(
                f"--param {item!r}: expected key=value (the value is read as JSON when it "
                'parses, e.g. n=3, flags=[1,2], name="x", and as plain text otherwise)'
            )
        try:
            params[key] = json.loads(text)
        except ValueError:
            params[key] = text
    return params


def effective_executor(
    routine: Routine, flow: Flow, cli_executor: str | None
) -> tuple[str, dict[str, Any]]:
    """The executor a routine will run on, by the runtime's precedence.

    routine > ``--executor`` (``Runtime(executor=...)``) > flow file > ``ROUTILUX_EXECUTOR``
    > config file > ``thread``.
    """
    if routine.executor is not None:
        return routine.executor, {}
    if cli_executor is not None:
        return cli_executor, {}
    if flow.executor is not None:
        return flow.executor, dict(flow.executor_options)
    name, options, _ = configured_executor()
    return name, dict(options)


def executor_capabilities(
    registries: Registries, name: str, options: dict[str, Any]
) -> ExecutorCapabilities | None:
    """What the named executor can do, without starting it; None if that cannot be told."""
    try:
        factory = registries.executors.get(name)
    except LookupError:
        return None
    capabilities = getattr(factory, "capabilities", None)
    if isinstance(capabilities, ExecutorCapabilities):
        return capabilities
    try:
        # Executors take resources in start(), not in the constructor (executors.py contract).
        capabilities = getattr(factory(**options), "capabilities", None)
    except Exception:
        return None
    return capabilities if isinstance(capabilities, ExecutorCapabilities) else None


def check_executor_name(registries: Registries, name: str | None) -> None:
    """Raise CommandInputError for an ``--executor`` no plugin registered."""
    if name is not None and name not in registries.executors:
        known = ", ".join(registries.executors.names()) or "none"
        raise CommandInputError(
            f"--executor: unknown executor {name!r}; registered executors: {known}"
        )
