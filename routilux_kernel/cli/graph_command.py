"""``routilux graph FLOW_FILE --format mermaid|dot``: the flow as text a diagram tool draws."""

from __future__ import annotations

import argparse
import sys

from routilux_kernel.cli.flow_arguments import EXIT_OK, load_flow
from routilux_kernel.core.flow import Flow


def run(args: argparse.Namespace) -> int:
    flow = load_flow(args)
    sys.stdout.write(flow.to_mermaid() if args.format == "mermaid" else flow_to_dot(flow))
    return EXIT_OK


def flow_to_dot(flow: Flow) -> str:
    """A Graphviz ``digraph``: one box per routine (id and class), one edge per connection."""
    lines = [
        f"digraph {_quote(flow.flow_id)} {{",
        "    rankdir=LR;",
        "    node [shape=box];",
    ]
    for routine_id, routine in flow.routines.items():
        label = f"{routine_id}\n{type(routine).__name__}"
        lines.append(f"    {_quote(routine_id)} [label={_quote(label)}];")
    for c in flow.connections:
        label = f"{c.event} → {c.slot}"
        lines.append(f"    {_quote(c.source_id)} -> {_quote(c.target_id)} [label={_quote(label)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
