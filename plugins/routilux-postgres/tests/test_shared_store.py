"""Several drivers share one PostgreSQL store: four ``routilux run`` processes on four flows
write 100 jobs each at once; two are killed with SIGKILL mid-run, then two ``routilux jobs
resume --interrupted`` start at the same moment. Every job completes exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from testsupport.job_stores import StoreTables, fresh_postgres_url

KERNEL_TESTS = Path(__file__).resolve().parents[3] / "tests"
FLOWS = KERNEL_TESTS / "durable_flows"
ROUTILUX = [sys.executable, "-m", "routilux_kernel.cli"]
DRIVERS = 4
JOBS = 100
KILLED = (0, 1)
WAIT = 60.0


def _flow_files(folder: Path, hold: Path) -> list[Path]:
    """stress_chain under four flow ids (drive0..drive3), with its routines next to them; in
    the flows of the drivers to be killed, ``second`` waits until ``hold`` exists."""
    (folder / "durable_steps.py").write_text((FLOWS / "durable_steps.py").read_text())
    text = (FLOWS / "stress_chain.yaml").read_text()
    held = text.replace(
        'second: {use: "durable_steps:CountingStep", config: {max_delay: 0.01}}',
        f'second: {{use: "durable_steps:CountingStep", config: {{hold_file: "{hold}"}}}}',
    )
    assert held != text
    files = []
    for index in range(DRIVERS):
        path = folder / f"drive{index}.yaml"
        source = held if index in KILLED else text
        path.write_text(source.replace("flow_id: stress_chain", f"flow_id: drive{index}"))
        files.append(path)
    return files


def _start(
    command: list[str], folder: Path, output: int = subprocess.DEVNULL
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ROUTILUX_STORE": "memory", "ROUTILUX_EXECUTOR": "thread"}
    return subprocess.Popen(
        [*ROUTILUX, *command],
        cwd=folder,
        env=env,
        stdout=output,
        stderr=subprocess.PIPE,
    )


def test_four_drivers_two_killed_two_recoverers_every_job_completes_once(tmp_path, postgres_server):
    url = fresh_postgres_url(postgres_server.url)
    db = StoreTables(url)
    hold = tmp_path / "open-the-gate"
    drivers = [
        _start(
            ["run", str(flow), "--jobs", str(JOBS), "--max-workers", "4", "--store", url], tmp_path
        )
        for flow in _flow_files(tmp_path, hold)
    ]
    deadline = time.monotonic() + WAIT
    # The killed drivers' jobs are all stored, and each has its 4 workers held inside
    # ``second`` (so at least 4 ``first`` committed) before the kill: all 200 jobs are owed.
    for index in KILLED:
        flow = f"flow_id = 'drive{index}'"
        while (
            db.scalar(f"SELECT count(*) FROM {{jobs}} WHERE {flow}") < JOBS
            or db.scalar(
                "SELECT count(*) FROM {activations} a JOIN {jobs} j USING (job_id) "
                f"WHERE {flow} AND routine_id = 'first'"
            )
            < 4
        ):
            assert drivers[index].poll() is None, drivers[index].stderr.read().decode()
            assert time.monotonic() < deadline, f"driver {index} never got inside second"
            time.sleep(0.01)
    for index in KILLED:
        drivers[index].send_signal(signal.SIGKILL)
    for index, driver in enumerate(drivers):
        _, err = driver.communicate(timeout=WAIT)
        expected = -signal.SIGKILL if index in KILLED else 0
        assert driver.returncode == expected, err.decode()
    assert db.scalar("SELECT count(*) FROM {jobs} WHERE status = 'running'") == 2 * JOBS
    hold.touch()  # the recovered runs may pass

    recoverers = [
        _start(
            ["jobs", "resume", "--interrupted", "--store", url, "--json"],
            tmp_path,
            subprocess.PIPE,
        )
        for _ in range(2)
    ]
    resumed: list[str] = []
    for recoverer in recoverers:
        out, err = recoverer.communicate(timeout=WAIT)
        assert recoverer.returncode == 0, err.decode()
        resumed += [job["job_id"] for job in json.loads(out)]
    # each interrupted job was claimed by exactly one recoverer
    assert len(resumed) == len(set(resumed)) == 2 * JOBS
    assert set(resumed) == {
        job_id
        for (job_id,) in db.rows("SELECT job_id FROM {jobs} WHERE flow_id IN ('drive0', 'drive1')")
    }

    per_flow = dict(db.rows("SELECT flow_id, count(*) FROM {jobs} GROUP BY flow_id"))
    assert per_flow == {f"drive{index}": JOBS for index in range(DRIVERS)}
    assert db.scalar("SELECT count(*) FROM {jobs} WHERE status = 'completed'") == DRIVERS * JOBS
    # one committed activation per (job, routine): none lost, none run twice, none mixed up
    assert db.rows(
        "SELECT routine_id, count(*), count(DISTINCT job_id) FROM {activations} "
        "GROUP BY routine_id ORDER BY routine_id"
    ) == [(routine, DRIVERS * JOBS, DRIVERS * JOBS) for routine in ("first", "second", "third")]
    for (final,) in db.rows("SELECT final_state FROM {jobs}"):
        state = json.loads(final)
        assert state["routine_states"] == {
            "first": {"count": 1},
            "second": {"count": 1},
            "third": {"count": 1},
        }
        assert sorted(state["shared_log"]) == ["first", "second", "third"]
