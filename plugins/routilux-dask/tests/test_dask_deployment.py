"""A flow file run through ``routilux run`` on a real multi-process Dask deployment.

A ``dask scheduler`` and two ``dask worker`` processes run on 127.0.0.1 (see
``dask_deployment.py``). The flow's routines and a worker plugin live in modules beside the
flow file; the workers get them on their ``PYTHONPATH``, as docs/scale-out.md tells users.

The kill scenario is pinned: every ``square`` activation signals that it started (a marker
file naming its job, item and worker pid) and then waits for a release file. The test waits
until both workers are inside an activation, SIGKILLs worker-0, and only then releases. So
worker-0 certainly dies mid-activation, and every activation that completes ran on worker-1.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testsupport.components import require_component

require_component("dask")

from dask_deployment import DaskDeployment, running_dask_deployment  # noqa: E402

JOBS = 4
ITEMS = 3
WAIT = 30.0

ROUTINES_MODULE = '''
"""Routines of the deployment flow: imported by the driver and by every Dask worker."""

import os
import time
from pathlib import Path

from routilux_kernel import Routine


class Numbers(Routine):
    def __init__(self):
        super().__init__()
        self.add_slot("trigger")
        self.add_event("item", ["n"])
        self.set_config(count=3)

    def logic(self, slot_data, policy_message, job_state):
        for n in range(1, self.get_config("count") + 1):
            self.emit("item", n=n)


class GatedSquare(Routine):
    """Announces each activation with a marker file, then waits for the release file."""

    def __init__(self):
        super().__init__()
        self.add_slot("item")
        self.add_event("squared", ["n", "square", "setup"])

    def logic(self, slot_data, policy_message, job_state):
        gate_dir = Path(self.get_config("gate_dir"))
        for params in slot_data["item"]:
            n = params["n"]
            (gate_dir / f"started-{job_state.job_id}-{n}-{os.getpid()}").touch()
            deadline = time.monotonic() + 60
            while not (gate_dir / "release").exists():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no release file in {gate_dir}")
                time.sleep(0.01)
            setup = os.environ.get("ROUTILUX_DEPLOYMENT_SETUP", "worker_setup did not run")
            self.emit("squared", n=n, square=n * n, setup=setup)


class Collect(Routine):
    def __init__(self):
        super().__init__()
        self.add_slot("squared")

    def logic(self, slot_data, policy_message, job_state):
        for params in slot_data["squared"]:
            job_state.shared_log.append([params["n"], params["square"], params["setup"]])
'''

WORKER_PLUGIN_MODULE = '''
"""A routilux plugin loaded on each Dask worker through the executor's worker_plugins."""

import os

from routilux_kernel import hookimpl


@hookimpl
def worker_setup(worker):
    os.environ["ROUTILUX_DEPLOYMENT_SETUP"] = f"{worker.executor}:{worker.name}"
'''


def write_flow(directory: Path, address: str, gate_dir: Path, *, retry: bool) -> Path:
    """The flow file, its routines module and its worker plugin module, side by side."""
    (directory / "deployment_routines.py").write_text(ROUTINES_MODULE)
    (directory / "deployment_plugin.py").write_text(WORKER_PLUGIN_MODULE)
    square_handler = (
        "    error_handler: {strategy: retry, max_retries: 2, retry_delay: 0}\n" if retry else ""
    )
    flow_file = directory / "squares.yaml"
    flow_file.write_text(
        textwrap.dedent(
            f"""\
            flow_id: squares
            executor:
              name: dask
              options:
                address: {address}
                worker_plugins: [deployment_plugin]
            routines:
              numbers:
                use: deployment_routines:Numbers
                config: {{count: {ITEMS}}}
              square:
                use: deployment_routines:GatedSquare
                config: {{gate_dir: "{gate_dir}"}}
            """
        )
        + square_handler
        + textwrap.dedent(
            """\
              collect: deployment_routines:Collect
            connections:
              - numbers.item -> square.item
              - square.squared -> collect.squared
            """
        )
    )
    return flow_file


def routilux_command() -> list[str]:
    script = Path(sys.executable).with_name("routilux")
    return [str(script)] if script.exists() else [sys.executable, "-m", "routilux_kernel.cli"]


def driver_environment() -> dict[str, str]:
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DASK_", "ROUTILUX_EXECUTOR"))
    }


def started_markers(gate_dir: Path) -> list[tuple[str, int, int]]:
    """(job id, item, worker pid) of every activation of ``square`` that started."""
    markers = []
    for marker in gate_dir.glob("started-*"):
        job_id, item, pid = marker.name.removeprefix("started-").rsplit("-", 2)
        markers.append((job_id, int(item), int(pid)))
    return markers


def wait_for_both_workers_busy(
    gate_dir: Path, deployment: DaskDeployment, driver: subprocess.Popen[str]
) -> list[tuple[str, int, int]]:
    pids = set(deployment.worker_pids().values())
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        markers = started_markers(gate_dir)
        if {pid for _, _, pid in markers} == pids:
            return markers
        if driver.poll() is not None:
            output, errors = driver.communicate()
            pytest.fail(f"routilux run ended early ({driver.returncode}):\n{output}\n{errors}")
        time.sleep(0.02)
    pytest.fail(f"not both workers {pids} started a square in {WAIT}s: {started_markers(gate_dir)}")


@pytest.fixture
def deployment(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[DaskDeployment]:
    allowed_failures = getattr(request, "param", None)
    # One task per worker thread at a time: a task the scheduler has handed to a worker is
    # then a task running there, so the killed worker held exactly the activation the
    # markers show (the default, 1.1, also hands each worker one task ahead).
    config = {"DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "1.0"}
    if allowed_failures is not None:
        config["DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES"] = str(allowed_failures)
    flow_dir = tmp_path / "flow"
    flow_dir.mkdir()
    with running_dask_deployment(
        tmp_path / "dask", worker_python_path=[flow_dir], scheduler_config=config
    ) as running:
        yield running


def run_and_kill_worker_mid_activation(
    deployment: DaskDeployment, flow_dir: Path, *, retry: bool
) -> tuple[list[dict[str, Any]], list[tuple[str, int, int]]]:
    """Run JOBS jobs; kill worker-0 while both workers hold a gated activation."""
    gate_dir = flow_dir / "gates"
    gate_dir.mkdir()
    flow_file = write_flow(flow_dir, deployment.scheduler_address, gate_dir, retry=retry)
    driver = subprocess.Popen(
        [*routilux_command(), "run", str(flow_file), "--jobs", str(JOBS), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=flow_dir,
        env=driver_environment(),
    )
    try:
        busy = wait_for_both_workers_busy(gate_dir, deployment, driver)
        deployment.kill_worker("worker-0")
        (gate_dir / "release").touch()
        output, errors = driver.communicate(timeout=WAIT)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()
    assert driver.returncode == 0, f"routilux run exited {driver.returncode}:\n{output}\n{errors}"
    killed_pid = deployment.worker_pids()["worker-0"]
    killed_activations = [(job, item) for job, item, pid in busy if pid == killed_pid]
    return json.loads(output), killed_activations


def assert_every_job_completed_exactly_once_on_the_survivor(
    jobs: list[dict[str, Any]], deployment: DaskDeployment, flow_dir: Path
) -> None:
    assert len(jobs) == JOBS
    survivor = "dask:worker-1"
    for job in jobs:
        assert job["status"] == "completed", job["error"]
        assert sorted(job["shared_log"]) == [[n, n * n, survivor] for n in range(1, ITEMS + 1)]
        assert job["unconsumed"] == {}
    survivor_pid = deployment.worker_pids()["worker-1"]
    # Each item of each job ended on the survivor exactly once; the killed worker's
    # activations started there a second time.
    finished_runs = [
        (job, item) for job, item, pid in started_markers(flow_dir / "gates") if pid == survivor_pid
    ]
    assert sorted(finished_runs) == sorted(
        (job["job_id"], n) for job in jobs for n in range(1, ITEMS + 1)
    )


def test_dask_reschedules_the_activation_of_a_killed_worker(
    deployment: DaskDeployment, tmp_path: Path
) -> None:
    flow_dir = tmp_path / "flow"
    jobs, killed_activations = run_and_kill_worker_mid_activation(deployment, flow_dir, retry=False)
    assert len(killed_activations) == 1  # one thread per worker
    assert_every_job_completed_exactly_once_on_the_survivor(jobs, deployment, flow_dir)
    # Dask re-ran the task by itself: the kernel saw no error and retried nothing.
    for job in jobs:
        assert job["errors"] == []
        assert [entry for entry in job["history"] if entry["kind"] in ("error", "retry")] == []


@pytest.mark.parametrize("deployment", [0], indirect=True, ids=["allowed-failures=0"])
def test_a_retry_handler_reruns_the_activation_of_a_killed_worker(
    deployment: DaskDeployment, tmp_path: Path
) -> None:
    flow_dir = tmp_path / "flow"
    jobs, killed_activations = run_and_kill_worker_mid_activation(deployment, flow_dir, retry=True)
    [(killed_job, killed_item)] = killed_activations
    assert_every_job_completed_exactly_once_on_the_survivor(jobs, deployment, flow_dir)
    # The scheduler gave up on the task (allowed-failures=0): the kernel got a
    # WorkerCrashedError and the RETRY handler sent the activation again.
    killed_address = deployment.worker_addresses["worker-0"]
    for job in jobs:
        trouble = [entry for entry in job["history"] if entry["kind"] in ("error", "retry")]
        if job["job_id"] != killed_job:
            assert trouble == []
            continue
        error, retry = trouble
        assert (error["routine_id"], error["detail"]["error_type"]) == (
            "square",
            "WorkerCrashedError",
        )
        assert error["detail"]["action"] == "retry"
        assert f"dask worker {killed_address} died" in error["detail"]["error"]
        assert f"while running routine 'square' of job {killed_job}" in error["detail"]["error"]
        assert (retry["routine_id"], retry["detail"]) == ("square", 1)


@pytest.fixture
def deployment_without_flow_modules(tmp_path: Path) -> Iterator[DaskDeployment]:
    """Workers started without the flow's directory on their path (the setup step forgotten)."""
    with running_dask_deployment(tmp_path / "dask", worker_count=1) as running:
        yield running


def run_flow(flow_file: Path, *, environment: dict[str, str] | None = None) -> tuple[int, str, str]:
    completed = subprocess.run(
        [*routilux_command(), "run", str(flow_file), "--json"],
        capture_output=True,
        text=True,
        cwd=flow_file.parent,
        env=environment or driver_environment(),
        timeout=WAIT,
    )
    return completed.returncode, completed.stdout, completed.stderr


def test_workers_missing_the_flow_modules_fail_with_the_module_named(
    deployment_without_flow_modules: DaskDeployment, tmp_path: Path
) -> None:
    flow_dir = tmp_path / "flow"
    gate_dir = flow_dir / "gates"
    gate_dir.mkdir(parents=True)
    (gate_dir / "release").touch()
    address = deployment_without_flow_modules.scheduler_address
    flow_file = write_flow(flow_dir, address, gate_dir, retry=False)

    code, output, errors = run_flow(flow_file)
    assert (code, output) == (2, "")
    assert f"routilux run: {flow_file}: executor 'dask' (asked for by flow 'squares')" in errors
    assert "ModuleNotFoundError: No module named 'deployment_plugin'" in errors

    flow_file.write_text(flow_file.read_text().replace("worker_plugins: [deployment_plugin]", ""))
    code, output, errors = run_flow(flow_file)
    assert code == 1, errors
    [job] = json.loads(output)
    assert (job["status"], job["error_routine_id"]) == ("failed", "numbers")
    assert job["error"] == (
        "ModuleNotFoundError: routine 'numbers' could not be unpickled in the worker: "
        "No module named 'deployment_routines'"
    )


def test_an_unreachable_scheduler_is_reported_with_its_address(tmp_path: Path) -> None:
    # A port bound but not listening refuses connections for as long as the test holds it.
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{unused.getsockname()[1]}"
        flow_dir = tmp_path / "flow"
        flow_dir.mkdir()
        flow_file = write_flow(flow_dir, address, flow_dir, retry=False)
        environment = {**driver_environment(), "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "1s"}
        code, output, errors = run_flow(flow_file, environment=environment)
    assert (code, output) == (2, "")
    assert f"failed to start with options {{'address': '{address}'" in errors
    assert f"OSError: Timed out trying to connect to {address} after 1 s" in errors
