"""The ``routilux`` command line. Every sub-command comes from the ``register_commands`` hook.

The built-in commands (run, validate, graph, routines, plugins) are registered by
``routilux_kernel.cli.builtin_commands`` exactly as a third-party plugin registers its own:
``register(name, run, help=..., add_arguments=None)`` where ``run(args) -> int`` returns the
exit code and ``add_arguments(parser)`` adds options to the command's argparse parser.
``args.plugin_manager`` is the plugin manager the CLI uses.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from typing import Any

import pluggy

from routilux_kernel.core.errors import RoutiluxError, exception_text
from routilux_kernel.core.lazy_logger import logger
from routilux_kernel.engine.log_config import configure_logging, disable_logging
from routilux_kernel.hooks.registry import Registered, Registry

__all__ = ["build_parser", "main"]

_LEVELS = ("WARNING", "INFO", "DEBUG")
# The exit codes of cli/flow_arguments.py, here too so that ``--help`` does not import the
# flow-file layer through it.
EXIT_JOB_FAILED = 1
EXIT_BAD_INPUT = 2


def main(
    argv: Sequence[str] | None = None, *, plugin_manager: pluggy.PluginManager | None = None
) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    from routilux_kernel.hooks.installed import get_plugin_manager
    from routilux_kernel.hooks.registry import registries_for

    try:
        pm = plugin_manager if plugin_manager is not None else get_plugin_manager()
        commands = registries_for(pm).commands
    except RoutiluxError as exc:
        print(f"routilux: cannot load plugins: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    parser = build_parser(commands, pm)
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # argparse reports bad usage itself and exits 2 (0 for --help)
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    if getattr(args, "command", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    args.plugin_manager = pm
    if args.command != "plugins":  # that command lists them itself
        _report_plugin_failures(pm)
    sink = _enable_logging(args.verbose)
    try:
        return _run_command(args)
    finally:
        logger.remove(sink)
        disable_logging()  # called in-process (tests, embedding): the library is quiet again


def build_parser(
    commands: Registry, plugin_manager: pluggy.PluginManager | None = None
) -> argparse.ArgumentParser:
    """The top-level parser with one sub-parser per registered command.

    With a plugin manager, its ``extend_command`` hooks add their options to each command.
    """
    parser = argparse.ArgumentParser(
        prog="routilux",
        description="Run, check and draw routilux flow files; list routines and plugins.",
    )
    parser.add_argument("--version", action="version", version=f"routilux {_version()}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log more: -v for INFO, -vv for DEBUG (default: warnings only)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for entry in commands:
        add_arguments = entry.options.get("add_arguments")
        if add_arguments is not None and not _arguments_work(entry, add_arguments):
            continue
        help_text = entry.options.get("help")
        sub = subparsers.add_parser(entry.name, help=help_text, description=help_text)
        # SUPPRESS keeps a -v given before the command from being reset by the sub-parser.
        sub.add_argument(
            "-v",
            "--verbose",
            action="count",
            default=argparse.SUPPRESS,
            help="log more: -v for INFO, -vv for DEBUG",
        )
        if add_arguments is not None:
            add_arguments(sub)
        if plugin_manager is not None:
            _extend(plugin_manager, entry.name, sub)
        sub.set_defaults(command_run=entry.value, command_plugin=entry.plugin)
    return parser


def _extend(pm: pluggy.PluginManager, command: str, parser: argparse.ArgumentParser) -> None:
    """Options plugins add to ``command``; a plugin whose hook fails is reported, not fatal."""
    for impl in pm.hook.extend_command.get_hookimpls():
        try:
            impl.function(command=command, parser=parser)
        except Exception as exc:
            print(
                f"routilux: plugin {impl.plugin_name!r} could not add options to "
                f"{command!r}: {type(exc).__name__}: {exc}",
                file=sys.stderr,
            )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("routilux-kernel")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(version unknown: routilux-kernel is not installed)"


def _arguments_work(entry: Registered, add_arguments: Any) -> bool:
    """Try a command's add_arguments on a scratch parser, so a broken one is left out whole."""
    try:
        add_arguments(argparse.ArgumentParser(prog=f"routilux {entry.name}", add_help=False))
    except Exception as exc:
        print(
            f"routilux: command {entry.name!r} of plugin {entry.plugin!r} is left out: "
            f"its add_arguments raised {type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        return False
    return True


def _run_command(args: argparse.Namespace) -> int:
    # Imported here so that ``routilux --help`` does not load the flow-file layer.
    from routilux_kernel.cli.flow_arguments import CommandInputError
    from routilux_kernel.engine.config import ConfigError
    from routilux_kernel.flowfiles import FlowFileError

    prog = f"routilux {args.command}"
    try:
        code = args.command_run(args)
    except FlowFileError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        count = len(exc.problems)
        print(
            f"{prog}: {count} problem{'s' if count != 1 else ''}; nothing was run", file=sys.stderr
        )
        return EXIT_BAD_INPUT
    except (CommandInputError, ConfigError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # stdout closed early (e.g. piped into head): not a failure
        _silence_stdout()
        return 0
    except Exception as exc:
        if args.verbose:
            traceback.print_exc()
        print(
            f"{prog}: failed: {type(exc).__name__}: {exception_text(exc)}"
            + ("" if args.verbose else " (run with -v for the traceback)"),
            file=sys.stderr,
        )
        return EXIT_JOB_FAILED
    return 0 if code is None else int(code)


def _report_plugin_failures(pm: pluggy.PluginManager) -> None:
    """A plugin that failed to load is why a routine or executor may be missing: say so."""
    from routilux_kernel.hooks.installed import plugin_load_failures

    for failure in plugin_load_failures(pm):
        where = failure["distribution"] or "unknown distribution"
        if failure["version"]:
            where = f"{where} {failure['version']}"
        print(
            f"routilux: plugin {failure['entry_point']!r} ({where}) was left out: "
            f"{failure['error']}",
            file=sys.stderr,
        )


def _silence_stdout() -> None:
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _enable_logging(verbosity: int) -> int:
    try:
        logger.remove(0)  # loguru's own default sink would repeat every record at DEBUG
    except ValueError:
        pass
    return configure_logging(_LEVELS[min(verbosity, len(_LEVELS) - 1)])
