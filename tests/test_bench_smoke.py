"""The benchmark suite still runs: a quick W1 through ``python -m bench`` (seconds, not minutes)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def harness(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """bench/_harness.py (bench/ is a top-level package of the repo, not of the install)."""
    monkeypatch.syspath_prepend(str(ROOT))
    return importlib.import_module("bench._harness")


@pytest.mark.timeout(60)
def test_quick_w1_runs_and_reports_against_its_floor(tmp_path: Path, harness: ModuleType) -> None:
    output = tmp_path / "latest.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "-k", "W1", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(output.read_text())
    assert report["errors"] == {}
    rows = report["rows"]
    assert [r["workload"] for r in rows] == ["W1 one-routine jobs"]
    (w1,) = rows
    assert set(harness.ROW_KEYS) <= set(w1)
    assert w1["ours"] > 0 and w1["floor"] > 0
    assert w1["ratio"] == pytest.approx(w1["ours"] / w1["floor"])
    assert "W1 one-routine jobs" in done.stdout and "jobs/s" in done.stdout


@pytest.mark.parametrize(
    ("target", "ours", "ratio", "met"),
    [
        (">= 0.3x", 10.0, 0.31, True),
        (">= 0.3x", 10.0, 0.29, False),
        ("<= 1.15", 1.2, 1.0, False),
        ("<= 1.15", 1.1, 2.0, True),
        ("< 1000", 999.0, None, True),
        ("-", 5.0, None, None),
        (">= 0.5x", 1.0, None, None),
    ],
)
def test_targets_with_x_are_checked_against_the_ratio_others_against_ours(
    harness: ModuleType, target: str, ours: float, ratio: float | None, met: bool | None
) -> None:
    assert harness.target_met({"target": target, "ours": ours, "ratio": ratio}) is met
