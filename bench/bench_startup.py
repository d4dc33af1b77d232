"""S1-S3: start-up time of ``import routilux_kernel`` and ``routilux --help``, in subprocesses.

Each command runs in a fresh interpreter, alternating with ``python -c pass`` (the floor:
what any Python program pays before its first import), and the fastest run of each counts.
S3 is ``routilux --help`` with installed plugins switched off (``ROUTILUX_LOAD_PLUGINS=``),
which is the kernel's own share; S2 also pays for importing every installed plugin's
entry-point module.

The interpreters get a byte-code cache in a temporary folder (``PYTHONPYCACHEPREFIX``), warmed
by one run of each command first: an installed package has its ``.pyc`` files, and without
them (``PYTHONDONTWRITEBYTECODE=1``, as on the test machine) every run would compile every
module again, which measures the compiler, not the start-up.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._harness import row, selected

S1 = "S1 import routilux_kernel"
S2 = "S2 routilux --help"
S3 = "S3 routilux --help, no plugins"
WORKLOADS = [S1, S2, S3]

PYTHON = sys.executable
ROUTILUX_SCRIPT = Path(sys.executable).with_name("routilux")


def wall_ms(command: list[str], env: dict[str, str] | None = None) -> float:
    """Milliseconds from spawn to exit of ``command``, which must succeed."""
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = (time.perf_counter() - start) * 1000
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr}")
    return elapsed


def fastest(commands: dict[str, tuple[list[str], dict[str, str] | None]], runs: int) -> dict:
    """Alternate the commands ``runs`` times; the fastest run of each is the least disturbed."""
    best = {name: float("inf") for name in commands}
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, (command, env) in commands.items():
            elapsed = wall_ms(command, env)
            samples[name].append(round(elapsed, 2))
            best[name] = min(best[name], elapsed)
    return {"best": best, "samples": samples}


def run(quick: bool) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="routilux-bench-pycache-") as cache:
        return _measure(quick, _cached_environment(cache))


def _cached_environment(cache: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = cache
    return env


def _measure(quick: bool, env: dict[str, str]) -> list[dict[str, Any]]:
    no_plugins = {**env, "ROUTILUX_LOAD_PLUGINS": ""}
    help_command = (
        [str(ROUTILUX_SCRIPT), "--help"]
        if ROUTILUX_SCRIPT.exists()
        else [PYTHON, "-m", "routilux_kernel.cli", "--help"]
    )
    commands: dict[str, tuple[list[str], dict[str, str] | None]] = {
        "pass": ([PYTHON, "-c", "pass"], env)
    }
    if selected(S1):
        commands[S1] = ([PYTHON, "-c", "import routilux_kernel"], env)
    if selected(S2):
        commands[S2] = (help_command, env)
    if selected(S3):
        commands[S3] = (help_command, no_plugins)
    fastest(commands, 1)  # fills the byte-code cache
    measured = fastest(commands, 3 if quick else 15)
    floor = measured["best"]["pass"]
    rows = []
    for name, target in ((S1, "<= 100"), (S2, "<= 150"), (S3, "<= 150")):
        if name not in commands:
            continue
        ours = measured["best"][name]
        result = row(
            name,
            "ms",
            ours,
            floor,
            target,
            f"+{ours - floor:.0f} ms over python -c pass (the floor)",
        )
        result["samples_ms"] = {
            "ours": measured["samples"][name],
            "floor": measured["samples"]["pass"],
        }
        rows.append(result)
    return rows
