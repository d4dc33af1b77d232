"""``routilux validate FLOW_FILE``: every problem of a flow file at once, without running it."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from routilux_kernel.cli.flow_arguments import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    effective_executor,
    executor_capabilities,
    load_flow,
)
from routilux_kernel.core.errors import ExecutorError
from routilux_kernel.core.flow import Flow
from routilux_kernel.engine.config import configured_executor
from routilux_kernel.flowfiles import FlowFileError, flow_entry
from routilux_kernel.flowfiles.files import read_flow_data
from routilux_kernel.hooks.registry import Registries, registries_for


def run(args: argparse.Namespace) -> int:
    registries = registries_for(args.plugin_manager)
    problems: list[str] = []
    flow = None
    try:
        flow = load_flow(args)
    except FlowFileError as exc:
        problems.extend(exc.problems)
        # The flow could not be built, but its executor options can still be checked, so
        # every problem shows at once (not one more after each fix).
        problems.extend(_raw_executor_option_problems(args, registries))
    if args.executor is not None and args.executor not in registries.executors:
        known = ", ".join(registries.executors.names()) or "none"
        problems.append(
            f"--executor: unknown executor {args.executor!r}; registered executors: {known}"
        )
    notes: list[str] = []
    if flow is not None and not problems:
        problems.extend(_unknown_executor_problems(flow, args, registries))
    if flow is not None and not problems:
        problems.extend(_executor_option_problems(flow, args, registries))
        problems.extend(_pickling_problems(flow, args, registries, notes))
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        count = len(problems)
        print(
            f"routilux validate: {args.flow_file} is invalid: {count} problem"
            f"{'s' if count != 1 else ''}",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    assert flow is not None
    print(f"{args.flow_file}: valid: {_describe(flow, args.executor)}")
    return EXIT_OK


def _unknown_executor_problems(
    flow: Flow, args: argparse.Namespace, registries: Registries
) -> list[str]:
    """Executor names no plugin registered, including ones from the environment or config."""
    known = ", ".join(registries.executors.names()) or "none"
    problems: dict[tuple[str, str], str] = {}
    for routine_id, routine in flow.routines.items():
        name, _ = effective_executor(routine, flow, args.executor)
        if name in registries.executors:
            continue
        if routine.executor is not None:
            where = f"{args.flow_file}: routines.{routine_id}.executor"
        elif args.executor is not None:
            continue  # reported already as an --executor problem
        elif flow.executor is not None:
            where = f"{args.flow_file}: executor"
        else:
            where = configured_executor()[2]
        problems[(where, name)] = (
            f"{where}: unknown executor {name!r}; registered executors: {known}"
        )
    return list(problems.values())


def _executor_option_problems(
    flow: Flow, args: argparse.Namespace, registries: Registries
) -> list[str]:
    """Options in the file that the flow's executor refuses (creating one starts nothing)."""
    if args.executor is not None or flow.executor is None or not flow.executor_options:
        return []
    return _options_refused(args, registries, flow.executor, flow.executor_options)


def _raw_executor_option_problems(args: argparse.Namespace, registries: Registries) -> list[str]:
    """Executor options of a file whose flow could not be built (read from its data)."""
    if args.executor is not None:
        return []
    try:
        data = read_flow_data(args.flow_file)
    except FlowFileError:
        return []  # unreadable: that is the one problem already reported
    executor = data.get("executor") if isinstance(data, dict) else None
    if not isinstance(executor, dict):
        return []
    name, options = executor.get("name"), executor.get("options")
    if not isinstance(name, str) or name not in registries.executors:
        return []  # an unknown name is reported by the file's own checks
    if not isinstance(options, dict) or not options or not all(isinstance(k, str) for k in options):
        return []
    return _options_refused(args, registries, name, options)


def _options_refused(
    args: argparse.Namespace, registries: Registries, name: str, options: dict[str, Any]
) -> list[str]:
    factory = registries.executors.get(name)
    try:
        factory(**options)  # creating an executor starts nothing (the executor contract)
    except Exception as exc:
        return [
            f"{args.flow_file}: executor.options: executor {name!r} refuses "
            f"{options}: {type(exc).__name__}: {exc}"
        ]
    return []


def _pickling_problems(
    flow: Flow, args: argparse.Namespace, registries: Registries, notes: list[str]
) -> list[str]:
    """Problems of routines that run on an executor which pickles them."""
    pickled = []
    for routine_id, routine in flow.routines.items():
        name, options = effective_executor(routine, flow, args.executor)
        capabilities = executor_capabilities(registries, name, options)
        if capabilities is None:
            notes.append(
                f"could not tell whether executor {name!r} pickles routines; "
                f"routine {routine_id!r} was not checked for picklability"
            )
        elif capabilities.pickles:
            pickled.append((routine_id, routine, name))
    if not pickled:
        return []
    from routilux_kernel.executors.pickling import require_cloudpickle  # loads loguru: lazily

    try:
        require_cloudpickle()
    except ExecutorError as exc:
        # Without cloudpickle every attribute would look unpicklable: one real problem instead.
        names = ", ".join(sorted({name for _, _, name in pickled}))
        return [f"{args.flow_file}: executor {names}: {exc}"]
    from routilux_kernel.executors.pickling import pickling_problems

    problems = []
    for routine_id, routine, name in pickled:
        for text in pickling_problems(routine, routine_id):
            problems.append(
                f"{args.flow_file}: routines.{routine_id}: {text} (executor {name!r} pickles "
                "routines)"
            )
    return problems


def _describe(flow: Flow, cli_executor: str | None) -> str:
    entry = flow_entry(flow) or flow.entry_routine_ids()
    executors = sorted(
        {effective_executor(r, flow, cli_executor)[0] for r in flow.routines.values()}
    )
    count = len(flow.routines)
    return (
        f"flow {flow.flow_id!r}, {count} routine{'s' if count != 1 else ''}, "
        f"{len(flow.connections)} connection{'s' if len(flow.connections) != 1 else ''}, "
        f"entry {', '.join(entry)}, executor{'s' if len(executors) > 1 else ''} "
        f"{', '.join(executors)}"
    )
