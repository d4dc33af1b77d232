"""What ``routilux run`` and ``routilux validate`` report: shared data, data left unconsumed
(``--strict``), errors whose ``str()`` raises, and a missing cloudpickle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from routilux_kernel.cli import main
from routilux_kernel.core.job_state import ExecutionStatus
from routilux_kernel.engine.runtime import Runtime
from routilux_kernel.flowfiles.files import load_flow_file

REPO = Path(__file__).resolve().parent.parent

ROUTINES = """
from routilux_kernel import Routine

class UnprintableError(Exception):
    def __str__(self):
        raise RuntimeError("this error cannot be shown")

class Raises(Routine):
    def __init__(self):
        super().__init__()
        self.add_slot("trigger")

    def logic(self, slot_data, message, job_state):
        job_state.shared_data["reached"] = True
        raise UnprintableError("never shown")

class Source(Routine):
    def __init__(self):
        super().__init__()
        self.add_slot("trigger")
        self.add_event("out", ["value"])

    def logic(self, slot_data, message, job_state):
        job_state.shared_data["answer"] = 42
        job_state.shared_data["long"] = "y" * 5000
        self.emit("out", value=1)

class Join(Routine):
    def __init__(self):
        super().__init__()
        self.add_slot("left")
        self.add_slot("right")

    def logic(self, slot_data, message, job_state):
        job_state.shared_data["joined"] = True
"""


@pytest.fixture
def flows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    module = f"report_routines_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(ROUTINES)
    monkeypatch.delenv("ROUTILUX_EXECUTOR", raising=False)

    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).replace("MODULE", module))
        return path

    return write


@pytest.fixture
def join_never_fires(flows) -> Path:
    """The join waits for both slots; only ``left`` is ever fed, so the job completes with
    one item left in ``join.left``."""
    return flows(
        "join.yaml",
        """
        flow_id: join-never-fires
        routines:
          source: {use: "MODULE:Source"}
          join: {use: "MODULE:Join", activation_policy: all_slots_ready}
        connections: ["source.out -> join.left"]
        """,
    )


@pytest.fixture
def unprintable(flows) -> Path:
    return flows(
        "unprintable.yaml",
        """
        flow_id: unprintable
        routines:
          raises: {use: "MODULE:Raises"}
        connections: []
        """,
    )


def test_summary_shows_shared_data_shortened_and_flags_data_left_unconsumed(
    join_never_fires, capsys
):
    code = main(["run", str(join_never_fires), "--jobs", "2"])
    out = capsys.readouterr().out
    assert code == 0, out
    jobs = [line for line in out.splitlines() if line.startswith("job ")]
    assert len(jobs) == 2
    assert all(" completed with data left unconsumed in " in line for line in jobs), jobs
    shared = [line.strip() for line in out.splitlines() if "shared_data:" in line]
    assert len(shared) == 2
    assert shared[0].startswith("shared_data: {'answer': 42, 'long': 'yyy")
    assert len(shared[0]) <= len("shared_data: ") + 100  # the 5000 y's are cut short
    assert "left unconsumed in join.left: 1 item(s)" in out
    assert "warning: 2 completed jobs left data unconsumed in slots" in out
    assert "joined" not in out


def test_strict_fails_a_run_whose_jobs_left_data_unconsumed(join_never_fires, capsys):
    assert main(["run", str(join_never_fires), "--strict", "--json"]) == 1
    (record,) = json.loads(capsys.readouterr().out)
    assert record["status"] == "completed"
    assert record["unconsumed"] == {"join": {"left": [{"value": 1}]}}


def test_strict_passes_a_run_that_consumed_everything(flows, capsys):
    flow = flows(
        "clean.yaml",
        """
        flow_id: clean
        routines:
          source: {use: "MODULE:Source"}
        connections: []
        """,
    )
    assert main(["run", str(flow), "--strict"]) == 0
    out = capsys.readouterr().out
    assert "with data left unconsumed" not in out and "warning" not in out


def test_an_error_whose_str_raises_still_gives_every_job_summary(unprintable, capsys):
    code = main(["run", str(unprintable), "--jobs", "3", "--executor", "thread"])
    captured = capsys.readouterr()
    assert code == 1, captured.err
    assert "failed:" not in captured.err
    jobs = [line for line in captured.out.splitlines() if line.startswith("job ")]
    assert len(jobs) == 3 and all(" failed " in line for line in jobs)
    assert (
        captured.out.count(
            "error in routine 'raises': UnprintableError: <str() of the exception raised "
            "RuntimeError: this error cannot be shown>"
        )
        == 3
    )
    assert "shared_data: {'reached': True}" in captured.out


def test_an_error_whose_str_raises_still_gives_json(unprintable, capsys):
    assert main(["run", str(unprintable), "--json", "--executor", "thread"]) == 1
    (record,) = json.loads(capsys.readouterr().out)
    assert record["status"] == "failed"
    assert record["error"] == (
        "UnprintableError: <str() of the exception raised RuntimeError: this error cannot be shown>"
    )


def test_job_state_to_dict_survives_an_error_whose_str_raises(unprintable):
    flow = load_flow_file(unprintable)
    with Runtime(executor="thread") as runtime:
        state = runtime.run(flow, timeout=10)
    assert state.status == ExecutionStatus.FAILED
    assert state.to_dict()["error"].startswith("UnprintableError: <str() of the exception")


HIDE_CLOUDPICKLE = (
    "import sys; sys.modules['cloudpickle'] = None; "  # import cloudpickle now fails
    "from routilux_kernel.cli import main; sys.exit(main())"
)


def routilux_without_cloudpickle(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "ROUTILUX_LOAD_PLUGINS": ""}
    env.pop("ROUTILUX_EXECUTOR", None)
    return subprocess.run(
        [sys.executable, "-c", HIDE_CLOUDPICKLE, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_validate_without_cloudpickle_reports_the_one_real_problem(join_never_fires):
    result = routilux_without_cloudpickle(
        "validate", str(join_never_fires), "--executor", "process"
    )
    assert result.returncode == 2, result.stderr
    problem = (
        f"{join_never_fires}: executor process: remote executors (process, dask) need "
        "cloudpickle, which is not installed: pip install cloudpickle (from a checkout: "
        "pip install -e '.[process]')"
    )
    assert result.stderr.splitlines() == [
        problem,
        f"routilux validate: {join_never_fires} is invalid: 1 problem",
    ]


def test_run_without_cloudpickle_names_the_same_problem(join_never_fires):
    result = routilux_without_cloudpickle("run", str(join_never_fires), "--executor", "process")
    assert result.returncode == 2, result.stderr
    assert "need cloudpickle, which is not installed: pip install cloudpickle" in result.stderr
    assert result.stdout == ""
