"""Crash rounds, on every durable store: ``routilux run`` of many jobs is killed with
SIGKILL at a random moment, then two ``routilux jobs resume --interrupted`` start at once.
Every job must complete with each routine's counter at 1 and exactly one committed
activation per (job, routine).

On the thread executor a round runs 200 jobs and the kill comes 0-0.4 s after every job was
stored. On the process executor a round runs 50 jobs on 2 workers: each round starts fresh
worker processes (for the run and for the resume), which is most of its time, and 200 jobs
would add nothing but minutes; its kill comes 0-0.3 s after the first activation committed
(before that, workers are still starting, and a kill there would interrupt nothing that had
run). PostgreSQL gets fewer rounds on threads: its store is the same contract, tested here
for the claims and commits only a server database makes different."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testsupport.job_stores import StoreTables, fresh_postgres_url

FLOWS = Path(__file__).parent.parent / "durable_flows"
ROUTILUX = [sys.executable, "-m", "routilux_kernel.cli"]
WAIT = 60.0


def _round(
    tmp_path: Path, url: str, executor: str, jobs: int, workers: int, kill_after: float
) -> None:
    db = StoreTables(url)
    # Only the plugin the store needs: the flow's routines are module:Class, and every
    # interpreter a round starts (driver, workers, resumers) then starts in half the time.
    env = {
        **os.environ,
        "ROUTILUX_STORE": "memory",
        "ROUTILUX_EXECUTOR": executor,
        "ROUTILUX_LOAD_PLUGINS": "postgres" if db.kind == "postgresql" else "",
    }
    driver = subprocess.Popen(
        # Random delays of up to 10 ms per routine: the run lasts longer than any kill
        # moment below, so every round interrupts jobs.
        [
            *ROUTILUX,
            "run",
            str(FLOWS / "stress_chain.yaml"),
            "--jobs",
            str(jobs),
            "--max-workers",
            str(workers),
            "--store",
            url,
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + WAIT
    try:
        # Every job is stored before the kill, so exactly `jobs` jobs are owed.
        while db.scalar("SELECT count(*) FROM {jobs}") < jobs:
            assert driver.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        if executor == "process":  # the kill is timed from the first commit (see above)
            while db.scalar("SELECT count(*) FROM {activations}") == 0:
                assert driver.poll() is None and time.monotonic() < deadline
                time.sleep(0.01)
        time.sleep(kill_after)  # the random moment of the crash
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait(WAIT)
    assert db.scalar("SELECT count(*) FROM {jobs} WHERE status = 'running'") > 0
    resumers = [
        subprocess.Popen(
            [*ROUTILUX, "jobs", "resume", "--interrupted", "--store", url],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    for resumer in resumers:
        _, err = resumer.communicate(timeout=WAIT)
        assert resumer.returncode == 0, err.decode()
    assert db.scalar("SELECT count(*) FROM {jobs} WHERE status = 'completed'") == jobs
    # no activation committed twice, none lost
    assert (
        db.scalar(
            "SELECT count(*) FROM (SELECT job_id, routine_id FROM {activations} "
            "GROUP BY job_id, routine_id HAVING count(*) = 1) AS once"
        )
        == 3 * jobs
    )
    assert db.scalar("SELECT count(*) FROM {activations}") == 3 * jobs
    # each routine's per-job counter in the final state equals an uninterrupted run's
    for (final,) in db.rows("SELECT final_state FROM {jobs}"):
        states = json.loads(final)["routine_states"]
        assert states == {"first": {"count": 1}, "second": {"count": 1}, "third": {"count": 1}}


@pytest.mark.parametrize(
    ("store", "executor", "jobs", "workers", "latest_kill", "rounds"),
    [
        ("sqlite", "thread", 200, 4, 0.4, 10),
        ("sqlite", "process", 50, 2, 0.3, 10),
        ("postgresql", "thread", 200, 4, 0.4, 4),
    ],
)
def test_sigkill_at_random_moments_then_resume_finishes_every_job_exactly(
    tmp_path, request, store, executor, jobs, workers, latest_kill, rounds
):
    rng = random.Random(f"crash rounds on {store} {executor}")
    for index in range(rounds):
        folder = tmp_path / f"round{index}"
        folder.mkdir()
        if store == "sqlite":
            url = f"sqlite:///{folder / 'runs.db'}"
        else:
            url = fresh_postgres_url(request.getfixturevalue("postgres_server").url)
        _round(folder, url, executor, jobs, workers, rng.uniform(0.0, latest_kill))
