"""The options of the built-in commands, apart from the commands themselves.

``routilux --help`` builds every command's parser, so what it imports is paid by every
invocation. The command modules import the flow-file layer, the runtime and the job stores;
this module imports argparse and a few constants, and the commands import their options
from here.
"""

from __future__ import annotations

import argparse

from routilux_kernel.core.job_state import ExecutionStatus
from routilux_kernel.core.job_store import DEFAULT_LIST_LIMIT
from routilux_kernel.engine.store_choice import CLI_DEFAULT_STORE

__all__ = [
    "add_flow_file_arguments",
    "add_graph_arguments",
    "add_jobs_arguments",
    "add_json_argument",
    "add_run_arguments",
    "add_store_argument",
    "add_validate_arguments",
    "positive_float",
    "positive_int",
]

GRAPH_FORMATS = ("mermaid", "dot")


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a number of seconds > 0 (NaN is not)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds > 0, got {text!r}"
        ) from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def add_flow_file_arguments(parser: argparse.ArgumentParser) -> None:
    """FLOW_FILE and --registered-only."""
    parser.add_argument("flow_file", metavar="FLOW_FILE", help="a flow file (.yaml, .yml or .json)")
    parser.add_argument(
        "--registered-only",
        action="store_true",
        help="refuse module:Class names (nothing is imported): only routines registered by "
        "plugins may be used; for flow files you do not trust. Also set by "
        "registered_only = true in routilux.toml or [tool.routilux]",
    )


def add_store_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        metavar="URL",
        help="job store: sqlite:///relative.db, sqlite:////absolute.db or memory (default: "
        f"ROUTILUX_STORE, the config file's store, else {CLI_DEFAULT_STORE})",
    )


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    add_flow_file_arguments(parser)
    parser.add_argument(
        "--executor",
        metavar="NAME",
        help="run on this executor (thread, process, ...), over the flow file's choice, "
        "ROUTILUX_EXECUTOR and the config file; a routine's own executor still wins",
    )
    parser.add_argument(
        "--max-workers",
        type=positive_int,
        metavar="N",
        help="at most N activations at once (the executor's max_workers)",
    )
    parser.add_argument(
        "--param",
        action="append",
        metavar="KEY=VALUE",
        help="entry data for every job, over the file's params; VALUE is JSON when it parses "
        '(3, true, [1,2], "text") and plain text otherwise; repeatable',
    )
    parser.add_argument(
        "--jobs",
        type=positive_int,
        default=1,
        metavar="N",
        help="run N jobs of the flow concurrently (default 1)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        metavar="S",
        help="fail a job that runs longer than S seconds",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the jobs' results as JSON on stdout and nothing else there",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 also when a job completed with data left unconsumed in a slot",
    )
    add_store_argument(parser)


def add_jobs_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="jobs_command", metavar="SUBCOMMAND", required=True)
    listing = commands.add_parser("list", help="list stored jobs, newest first")
    listing.add_argument("--status", choices=[str(s) for s in ExecutionStatus])
    listing.add_argument("--flow", metavar="FLOW_ID")
    listing.add_argument("--limit", type=int, default=DEFAULT_LIST_LIMIT, metavar="N")
    listing.add_argument("--json", action="store_true", help="print JSON")
    show = commands.add_parser("show", help="everything stored of one job")
    show.add_argument("job_id", metavar="JOB_ID")
    show.add_argument("--json", action="store_true", help="print JSON")
    prune = commands.add_parser("prune", help="delete finished jobs older than a duration")
    prune.add_argument("--older-than", required=True, metavar="AGE", help="e.g. 7d, 12h, 30m")
    resume = commands.add_parser("resume", help="finish interrupted jobs in the foreground")
    target = resume.add_mutually_exclusive_group(required=True)
    target.add_argument("job_id", nargs="?", metavar="JOB_ID")
    target.add_argument("--interrupted", action="store_true", help="every interrupted job")
    resume.add_argument("--json", action="store_true", help="print the results as JSON")
    for sub in (listing, show, prune, resume):
        add_store_argument(sub)


def add_validate_arguments(parser: argparse.ArgumentParser) -> None:
    add_flow_file_arguments(parser)
    parser.add_argument(
        "--executor",
        metavar="NAME",
        help="check for this executor (as routilux run --executor would use it); routines on "
        "an executor that pickles (process, dask) are checked for picklability",
    )


def add_graph_arguments(parser: argparse.ArgumentParser) -> None:
    add_flow_file_arguments(parser)
    parser.add_argument(
        "--format",
        choices=GRAPH_FORMATS,
        default="mermaid",
        help="mermaid (a graph LR block for Markdown) or dot (Graphviz); default mermaid",
    )
