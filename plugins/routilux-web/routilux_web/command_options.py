"""The command-line options of ``serve`` and ``run --ui``, without the web stack.

``routilux --help`` (and every other command) builds the options of every installed command,
so this module imports nothing but argparse and the kernel's light option helpers: Starlette
and uvicorn load only when a dashboard is served.
"""

from __future__ import annotations

import argparse

from routilux_kernel.cli.command_arguments import add_store_argument

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
TOKEN_ENVIRONMENT_VARIABLE = "ROUTILUX_WEB_TOKEN"


def add_server_arguments(parser: argparse.ArgumentParser, *, port: int = DEFAULT_PORT) -> None:
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default {DEFAULT_HOST}; any other needs a token)",
    )
    parser.add_argument(
        "--port", type=int, default=port, help=f"port to listen on (default {port}; 0: any free)"
    )
    parser.add_argument(
        "--token",
        metavar="TOKEN",
        help=f"access token every request must carry (default: ${TOKEN_ENVIRONMENT_VARIABLE})",
    )


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``routilux serve``."""
    add_store_argument(parser)
    add_server_arguments(parser)


def add_ui_arguments(parser: argparse.ArgumentParser) -> None:
    """The options ``routilux run`` gains from routilux-web."""
    parser.add_argument(
        "--ui", action="store_true", help="serve the dashboard while the jobs run (routilux-web)"
    )
    parser.add_argument(
        "--ui-host",
        default=DEFAULT_HOST,
        metavar="HOST",
        help=f"dashboard address with --ui (default {DEFAULT_HOST}; any other needs a token)",
    )
    parser.add_argument(
        "--ui-port",
        type=int,
        default=DEFAULT_PORT,
        metavar="PORT",
        help=f"dashboard port with --ui (default {DEFAULT_PORT}; 0: any free)",
    )
    parser.add_argument(
        "--ui-token",
        metavar="TOKEN",
        help=f"token every dashboard request must carry (default: ${TOKEN_ENVIRONMENT_VARIABLE})",
    )
