"""The tutorial's five programs print the same with ROUTILUX_EXECUTOR=process as on threads.

Timestamps and timings are masked; lines are compared as multisets because concurrent jobs
print in any order on either executor. With ``PYTHONUNBUFFERED`` set, ``print``
writes its text and its newline separately, so concurrent writers (threads or worker
processes) can interleave (``Count: 1Count: 1`` then an empty line): lines are cut where a
known line starts and empty lines are dropped.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

TUTORIAL = Path(__file__).resolve().parents[2] / "examples" / "tutorial"

_LINE_START = re.compile(r"(?<=.)(?=Count: |Collected: |Aggregated: |\[\d+\.\d+\] )")

_MASKS = [
    (re.compile(r"^\[\d+\.\d+\] "), "[T] "),
    (re.compile(r"\d+\.\d+s$"), "Ns"),
]


def run_step(step: int, executor: str) -> tuple[list[str], str]:
    """Run one tutorial program; its stdout lines (masked) and its stderr."""
    env = {**os.environ, "ROUTILUX_EXECUTOR": executor}
    done = subprocess.run(
        [sys.executable, str(TUTORIAL / f"step{step}.py")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=TUTORIAL,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    lines = []
    for printed in done.stdout.splitlines():
        for line in _LINE_START.split(printed):
            for pattern, replacement in _MASKS:
                line = pattern.sub(replacement, line)
            lines.append(line)
    return lines, done.stderr


@pytest.mark.parametrize("step", [1, 2, 3, 4])
def test_a_tutorial_step_prints_the_same_on_processes_as_on_threads(step: int) -> None:
    on_threads = [line for line in run_step(step, "thread")[0] if line]
    on_processes = [line for line in run_step(step, "process")[0] if line]

    assert Counter(on_processes) == Counter(on_threads)
    if step == 3:
        assert sum(line.startswith("Collected: ") for line in on_processes) == 9
    if step == 4:
        assert on_processes.count("Count: 1") == 5
        assert on_processes[-1] == "Final count: 1"


def test_step5_runs_on_processes_with_random_failures_handled() -> None:
    # 10% of calls fail at random, so compare the shape of the output, not its lines.
    lines = [line for line in run_step(5, "process")[0] if line]

    assert lines[0] == "Starting parallel API calls..."
    assert lines[-2] == "Completed in Ns"
    total = re.fullmatch(r"Total responses: (\d)", lines[-1])
    assert total is not None and 0 <= int(total.group(1)) <= 5
    responses = [line for line in lines if line.startswith("[T] Response from ")]
    aggregated = [line for line in lines if line.startswith("Aggregated: ")]
    assert len(aggregated) == len(responses) and 15 <= len(responses) <= 25
    assert len(lines) == 3 + len(responses) + len(aggregated)
