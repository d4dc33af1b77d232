"""The benchmark harness: find bench/bench_*.py, run them, print one table, save JSON.

Contract for a benchmark module ``bench/bench_<name>.py``: a function
``run(quick: bool) -> list[dict]`` returning one row per figure, each with the keys of
:data:`ROW_KEYS`. Two optional extras keep filtered runs fast:

- ``WORKLOADS``: a list of the workload names the module reports; when ``-k`` matches none
  of them, the module's ``run`` is not called at all.
- :func:`selected`: call it inside ``run`` to skip a workload the ``-k`` filter excludes.

A module that raises (including a failed correctness check) is reported and the others
still run; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import math
import os
import platform
import re
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUTPUT = BENCH_DIR / "results" / "latest.json"

#: Every row a module returns has exactly these keys.
ROW_KEYS = ("workload", "unit", "ours", "floor", "ratio", "target", "note")

_filters: list[str] = []
_repeats: list[int] = []  # set by --repeats


# -- helpers for benchmark modules -------------------------------------------------------


def selected(workload: str) -> bool:
    """True if ``workload`` passes the ``-k`` filters of this run (always True without any)."""
    return not _filters or any(f.lower() in workload.lower() for f in _filters)


def repeats(quick: bool) -> int:
    """How many times to repeat a measurement: 3 (or ``--repeats``), once in quick mode."""
    if _repeats:
        return _repeats[0]
    return 1 if quick else 3


def best_of(
    floor: Callable[[], float], ours: Callable[[], float], quick: bool
) -> tuple[float, float, dict[str, list[float]]]:
    """Alternate floor and ours measurements; return (best floor, best ours, every sample).

    Alternating lets both see the same machine; the minimum is the run least disturbed
    by other work on it.
    """
    samples: dict[str, list[float]] = {"floor": [], "ours": []}
    for _ in range(repeats(quick)):
        samples["floor"].append(floor())
        samples["ours"].append(ours())
    return min(samples["floor"]), min(samples["ours"]), samples


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Run ``fn`` after a full garbage collection; return (seconds, its result)."""
    gc.collect()
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def row(
    workload: str,
    unit: str,
    ours: float,
    floor: float | None,
    target: str,
    note: str = "",
    ratio: float | None = None,
) -> dict[str, Any]:
    """Build a result row; ``ratio`` defaults to ours/floor when there is a floor."""
    if ratio is None and floor:
        ratio = ours / floor
    return {
        "workload": workload,
        "unit": unit,
        "ours": float(ours),
        "floor": None if floor is None else float(floor),
        "ratio": None if ratio is None else float(ratio),
        "target": target,
        "note": note,
    }


# -- checking targets --------------------------------------------------------------------

_TARGET = re.compile(r"^\s*(>=|<=|>|<)\s*([0-9]*\.?[0-9]+(?:e-?[0-9]+)?)\s*(x)?", re.IGNORECASE)


def target_met(result: dict[str, Any]) -> bool | None:
    """Check a row against its target; None when the target is not a simple comparison.

    A target ending in ``x`` (">= 0.5x") is checked against ``ratio``; any other
    (">= 0.3", "<= 1.15", "< 1000") against ``ours``.
    """
    match = _TARGET.match(str(result.get("target") or ""))
    if match is None:
        return None
    op, bound, against_ratio = match.group(1), float(match.group(2)), match.group(3)
    value = result.get("ratio") if against_ratio else result.get("ours")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return {
        ">=": value >= bound,
        "<=": value <= bound,
        ">": value > bound,
        "<": value < bound,
    }[op]


# -- running modules ---------------------------------------------------------------------


def discover() -> list[str]:
    """Names (``bench_kernel`` ...) of every benchmark module, sorted."""
    return sorted(path.stem for path in BENCH_DIR.glob("bench_*.py"))


def _pick_modules(available: list[str], wanted: Sequence[str]) -> list[str]:
    if not wanted:
        return available
    picked = []
    for item in wanted:
        for name in item.split(","):
            name = name.strip()
            full = name if name.startswith("bench_") else f"bench_{name}"
            if full not in available:
                known = ", ".join(m.removeprefix("bench_") for m in available) or "none"
                raise ValueError(
                    f"no benchmark module {name!r} (looked for bench/{full}.py); modules: {known}"
                )
            if full not in picked:
                picked.append(full)
    return picked


def _check_rows(module: str, rows: object) -> list[dict[str, Any]]:
    if not isinstance(rows, list):
        raise TypeError(f"bench/{module}.py: run() must return a list of dicts, got {rows!r}")
    for item in rows:
        if not isinstance(item, dict):
            raise TypeError(f"bench/{module}.py: run() returned a non-dict row {item!r}")
        missing = [key for key in ROW_KEYS if key not in item]
        if missing:
            raise TypeError(
                f"bench/{module}.py: row {item.get('workload', item)!r} lacks keys "
                f"{missing}; every row needs {list(ROW_KEYS)}"
            )
    return rows


def run_module(name: str, quick: bool) -> tuple[list[dict[str, Any]], str | None, float]:
    """Import and run one module; return (rows, error text or None, seconds)."""
    start = time.perf_counter()
    try:
        module = importlib.import_module(f"bench.{name}")
        names = getattr(module, "WORKLOADS", None)
        if names is not None and not any(selected(n) for n in names):
            return [], None, 0.0
        run = getattr(module, "run", None)
        if not callable(run):
            raise TypeError(f"bench/{name}.py has no run(quick: bool) -> list[dict] function")
        rows = _check_rows(name, run(quick))
    except Exception:  # a broken module must not hide the others' figures
        return [], traceback.format_exc(), time.perf_counter() - start
    rows = [dict(r, module=name) for r in rows if selected(str(r["workload"]))]
    return rows, None, time.perf_counter() - start


# -- output ------------------------------------------------------------------------------


def format_number(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def format_table(rows: list[dict[str, Any]]) -> str:
    """One aligned table of every row; the ``ok`` column checks the target."""
    header = ("workload", "unit", "ours", "floor", "ratio", "target", "ok", "note")
    lines = []
    for r in rows:
        met = target_met(r)
        lines.append(
            (
                str(r["workload"]),
                str(r["unit"]),
                format_number(r["ours"]),
                format_number(r["floor"]),
                format_number(r["ratio"]),
                str(r["target"]),
                "" if met is None else ("yes" if met else "NO"),
                str(r["note"]),
            )
        )
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    numeric = {2, 3, 4}

    def fmt(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(header), rule, *(fmt(line) for line in lines)])


def _environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }


# -- command line ------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run the routilux_kernel benchmarks next to raw concurrent.futures floors.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat (smoke)")
    parser.add_argument(
        "-k",
        dest="filters",
        action="append",
        default=[],
        metavar="TEXT",
        help="only workloads whose name contains TEXT (case-insensitive; repeatable)",
    )
    parser.add_argument(
        "--module",
        action="append",
        default=[],
        metavar="NAME",
        help="only these modules, e.g. 'kernel' for bench/bench_kernel.py (repeatable, a,b)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="where to write the JSON results (default: bench/results/latest.json)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        metavar="N",
        help="repeat each measurement N times and keep the best (default 3, quick 1)",
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a figure misses its target"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    _filters[:] = args.filters
    if args.repeats is not None and args.repeats < 1:
        print(f"bench: --repeats must be >= 1, got {args.repeats}", file=sys.stderr)
        return 2
    _repeats[:] = [] if args.repeats is None else [args.repeats]
    try:
        modules = _pick_modules(discover(), args.module)
    except ValueError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    started = time.time()
    rows: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    timings: dict[str, float] = {}
    for name in modules:
        print(f"running bench/{name}.py{' (quick)' if args.quick else ''} ...", flush=True)
        module_rows, error, seconds = run_module(name, args.quick)
        timings[name] = round(seconds, 3)
        rows.extend(module_rows)
        if error is not None:
            errors[name] = error
            print(f"bench/{name}.py FAILED:\n{error}", file=sys.stderr, flush=True)
    print()
    print(format_table(rows) if rows else "no workload matched")
    missed = [r["workload"] for r in rows if target_met(r) is False]
    for r in rows:
        r["target_met"] = target_met(r)
    report = {
        "started_at": started,
        "seconds": round(time.time() - started, 3),
        "quick": args.quick,
        "filters": args.filters,
        "modules": modules,
        "module_seconds": timings,
        "environment": _environment(),
        "rows": rows,
        "errors": errors,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    figures = f"{len(rows)} figure{'' if len(rows) == 1 else 's'}"
    print(f"\n{figures} in {report['seconds']:.1f}s; written to {args.output}")
    if missed:
        print(f"missed targets: {', '.join(missed)}")
    if errors:
        print(f"failed modules: {', '.join(errors)}", file=sys.stderr)
        return 1
    return 1 if args.strict and missed else 0
