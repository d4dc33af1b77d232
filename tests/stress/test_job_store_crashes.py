"""Crash rounds, on every durable store: ``routilux run`` of 200 jobs is killed with SIGKILL
at a random moment, then two ``routilux jobs resume --interrupted`` start at once. Every job
must complete with each routine's counter at 1 and exactly one committed activation per
(job, routine)."""

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
JOBS = 200
WAIT = 60.0


def _round(tmp_path: Path, url: str, executor: str, kill_after: float) -> None:
    db = StoreTables(url)
    env = {**os.environ, "ROUTILUX_STORE": "memory", "ROUTILUX_EXECUTOR": executor}
    driver = subprocess.Popen(
        # Random delays of up to 10 ms per routine on 4 workers: the run lasts >= 0.75 s
        # (sleep-bound), longer than any kill moment below, so every round interrupts jobs.
        [
            *ROUTILUX,
            "run",
            str(FLOWS / "stress_chain.yaml"),
            "--jobs",
            str(JOBS),
            "--max-workers",
            "4",
            "--store",
            url,
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + WAIT
    # Every job is stored before the kill, so exactly JOBS jobs are owed.
    while db.scalar("SELECT count(*) FROM {jobs}") < JOBS:
        assert driver.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(kill_after)  # the random moment of the crash
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
    assert db.scalar("SELECT count(*) FROM {jobs} WHERE status = 'completed'") == JOBS
    # no activation committed twice, none lost
    assert (
        db.scalar(
            "SELECT count(*) FROM (SELECT job_id, routine_id FROM {activations} "
            "GROUP BY job_id, routine_id HAVING count(*) = 1) AS once"
        )
        == 3 * JOBS
    )
    assert db.scalar("SELECT count(*) FROM {activations}") == 3 * JOBS
    # each routine's per-job counter in the final state equals an uninterrupted run's
    for (final,) in db.rows("SELECT final_state FROM {jobs}"):
        states = json.loads(final)["routine_states"]
        assert states == {"first": {"count": 1}, "second": {"count": 1}, "third": {"count": 1}}


@pytest.mark.parametrize(
    ("store", "executor", "rounds"),
    [("sqlite", "thread", 10), ("sqlite", "process", 3), ("postgresql", "thread", 4)],
)
def test_sigkill_at_random_moments_then_resume_finishes_every_job_exactly(
    tmp_path, request, store, executor, rounds
):
    rng = random.Random(1234 + rounds)
    for index in range(rounds):
        folder = tmp_path / f"round{index}"
        folder.mkdir()
        if store == "sqlite":
            url = f"sqlite:///{folder / 'runs.db'}"
        else:
            url = fresh_postgres_url(request.getfixturevalue("postgres_server").url)
        _round(folder, url, executor, rng.uniform(0.0, 0.4))
