"""``routilux run FLOW --ui``: the dashboard is up while the run's jobs run, and gone after."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from web_server import FLOWS

START = 30.0


def test_run_with_ui_serves_the_running_job_then_stops(tmp_path: Path) -> None:
    gate = tmp_path / "open"
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(FLOWS), str(Path.cwd())])}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "routilux_kernel.cli",
            "run",
            str(FLOWS / "gated.yaml"),
            "--param",
            f"gate={gate}",
            "--store",
            store,
            "--ui",
            "--ui-port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        assert process.stderr is not None
        url = None
        for line in process.stderr:  # the gated job cannot end before we open the gate
            match = re.search(r"serving on (http://127\.0\.0\.1:\d+)/", line)
            if match:
                url = match.group(1)
                break
        assert url, "routilux run --ui never announced its dashboard"
        with httpx.Client(base_url=url, timeout=10.0) as client:
            jobs = client.get("/api/jobs").json()
            assert [job["flow_id"] for job in jobs["jobs"]] == ["gated"]
            assert jobs["jobs"][0]["status"] == "running"
            assert "gated" in client.get("/jobs", follow_redirects=True).text
        gate.write_text("go")
        out, err = process.communicate(timeout=START)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "1 completed" in out
    with pytest.raises(httpx.ConnectError):  # the dashboard stopped with the run
        httpx.get(f"{url}/api/jobs", timeout=2.0)


def test_ui_options_are_refused_on_an_unsafe_address_without_a_token(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "routilux_kernel.cli",
            "run",
            str(FLOWS / "greeting.yaml"),
            "--store",
            "memory",
            "--ui",
            "--ui-host",
            "0.0.0.0",
            "--ui-port",
            "0",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(FLOWS), "ROUTILUX_WEB_TOKEN": ""},
        timeout=START,
    )
    assert result.returncode == 2, result.stderr
    assert "token" in result.stderr
