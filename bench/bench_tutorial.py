"""The tutorial's timed programs on the ``process`` executor, next to the same on threads.

Steps 2 and 5 of docs/tutorial.md (examples/tutorial/) print how long their jobs took,
measured from just after ``Runtime(...)`` returned to the end of
``wait_until_all_jobs_finished``. On the process executor that window holds the start of the
worker template (a fresh interpreter importing the kernel and the installed plugins) and the
fork of each worker, since the pool starts on the first job; on threads it holds only the
work. The tutorial promises the same bounds on both (step 2 <= 0.35 s, step 5 < 0.6 s).

Each program runs as a user runs it: a fresh ``python stepN.py`` with
``ROUTILUX_EXECUTOR`` set, byte code cached (as after a first run). The printed seconds are
parsed; the best of the alternating runs is reported, the thread run as the floor.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench._harness import repeats, row, selected

TUTORIAL = Path(__file__).resolve().parents[1] / "examples" / "tutorial"

T2 = "T2 tutorial step 2 on processes"
T5 = "T5 tutorial step 5 on processes"
WORKLOADS = [T2, T5]

#: workload -> (program, what its timing line starts with, target)
PROGRAMS = {
    T2: ("step2.py", "Time with pool_size=5:", "<= 0.35"),
    T5: ("step5.py", "Completed in", "< 0.6"),
}
_SECONDS = re.compile(r"(\d+\.\d+)s\s*$")


class BenchCheckError(AssertionError):
    """A tutorial program did not run as the tutorial says."""


def printed_seconds(program: str, marker: str, executor: str, env: dict[str, str]) -> float:
    """Run one tutorial program on ``executor``; the seconds it printed after ``marker``."""
    done = subprocess.run(
        [sys.executable, program],
        cwd=TUTORIAL,
        env={**env, "ROUTILUX_EXECUTOR": executor},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0 or "Traceback" in done.stderr:
        raise BenchCheckError(f"{program} on {executor} failed: {done.stderr[-2000:]}")
    for line in done.stdout.splitlines():
        found = _SECONDS.search(line) if line.startswith(marker) else None
        if found:
            return float(found.group(1))
    raise BenchCheckError(f"{program} on {executor} printed no {marker!r} line:\n{done.stdout}")


def run(quick: bool) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="routilux-bench-pycache-") as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        rows = []
        for workload, (program, marker, target) in PROGRAMS.items():
            if not selected(workload):
                continue
            printed_seconds(program, marker, "process", env)  # fills the byte-code cache
            samples: dict[str, list[float]] = {"thread": [], "process": []}
            for _ in range(1 if quick else 3 * repeats(quick)):
                for executor in samples:
                    samples[executor].append(printed_seconds(program, marker, executor, env))
            ours, floor = min(samples["process"]), min(samples["thread"])
            median = sorted(samples["process"])[len(samples["process"]) // 2]
            note = (
                f"printed time, best of {len(samples['process'])} (median {median:.2f} s); "
                "the floor is the same program on threads"
            )
            result = row(workload, "s", ours, floor, target, note)
            result["samples_s"] = samples
            rows.append(result)
        return rows
