"""Recovery after a real crash: the driver is killed with SIGKILL, then jobs are resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from routilux_kernel.cli import main
from testsupport.job_stores import StoreTables

FLOWS = Path(__file__).parent / "durable_flows"
ROUTILUX = [sys.executable, "-m", "routilux_kernel.cli"]
WAIT = 20.0


def _committed(db: StoreTables, routine_id: str) -> int:
    return db.scalar(f"SELECT count(*) FROM {{activations}} WHERE routine_id = '{routine_id}'")


def crashed_run(
    tmp_path: Path,
    url: str,
    jobs: int,
    flow: str = "held_chain",
    committed: tuple[str, ...] = ("first",),
) -> tuple[StoreTables, str]:
    """Run ``flow`` (a held_*.yaml) until every job's ``committed`` routines committed and
    second is held, then SIGKILL the driver: each job is interrupted inside ``second``."""
    hold = tmp_path / "open-the-gate"
    flow_file = tmp_path / f"{flow}.yaml"
    flow_file.write_text((FLOWS / f"{flow}.yaml").read_text().replace("HOLD", str(hold)))
    (tmp_path / "durable_steps.py").write_text((FLOWS / "durable_steps.py").read_text())
    db = StoreTables(url)
    env = {**os.environ, "ROUTILUX_STORE": "memory"}  # --store must win over it
    driver = subprocess.Popen(
        [*ROUTILUX, "run", str(flow_file), "--jobs", str(jobs), "--store", url],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + WAIT
    try:
        # a condition on the store, not a timed guess
        while any(_committed(db, routine_id) < jobs for routine_id in committed):
            assert driver.poll() is None, driver.stderr.read().decode()
            assert time.monotonic() < deadline, f"{committed} never all committed"
            time.sleep(0.02)
    finally:  # also when the wait failed: the driver is held at the gate for good
        driver.send_signal(signal.SIGKILL)
        driver.wait(WAIT)
        driver.stderr.close()
    hold.touch()  # the resumed run may pass
    return db, url


def test_resume_interrupted_reruns_only_what_had_not_committed(
    tmp_path, store_url, job_store, monkeypatch, capsys
):
    db, url = crashed_run(tmp_path, store_url, jobs=3)
    store = job_store(url)
    interrupted = store.list_jobs(status="running")
    assert len(interrupted) == 3
    assert {job_id for job_id, wait in store.interrupted_jobs()} == {
        job["job_id"] for job in interrupted
    }
    monkeypatch.chdir(tmp_path)
    assert main(["jobs", "resume", "--interrupted", "--store", url, "--json"]) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert sorted(job["job_id"] for job in resumed) == sorted(j["job_id"] for j in interrupted)
    for job in resumed:
        assert job["status"] == "completed"
        # first ran once, before the crash; second and third once each after it
        assert job["routine_states"] == {
            "first": {"count": 1},
            "second": {"count": 1},
            "third": {"count": 1},
        }
        assert sorted(job["shared_log"]) == ["first", "second", "third"]
    assert (_committed(db, "first"), _committed(db, "second"), _committed(db, "third")) == (3, 3, 3)
    # nothing is left to resume, and a second resume of a finished job touches nothing
    assert store.interrupted_jobs() == []
    assert main(["jobs", "resume", resumed[0]["job_id"], "--store", url]) == 2
    assert "cannot be resumed" in capsys.readouterr().err


def test_a_job_is_claimed_by_exactly_one_recoverer(tmp_path, store_url, job_store):
    db, url = crashed_run(tmp_path, store_url, jobs=1)
    job_id = job_store(url).list_jobs()[0]["job_id"]
    one, other = job_store(url), job_store(url)
    taken = one.claim(job_id, one.owner)
    assert taken is not None and taken.job_id == job_id
    assert [a["routine_id"] for a in taken.activations] == ["first"]
    # this process owns it now, and it is alive: nobody else may take it
    assert other.claim(job_id, other.owner) is None
    assert other.interrupted_jobs() == []


def test_resume_one_job_touches_that_job_only(tmp_path, store_url, job_store, monkeypatch, capsys):
    db, url = crashed_run(tmp_path, store_url, jobs=2)
    first, second = (job["job_id"] for job in job_store(url).list_jobs())
    monkeypatch.chdir(tmp_path)
    assert main(["jobs", "resume", first, "--store", url, "--json"]) == 0
    assert [job["job_id"] for job in json.loads(capsys.readouterr().out)] == [first]
    statuses = {job["job_id"]: job["status"] for job in job_store(url).list_jobs()}
    assert statuses == {first: "completed", second: "running"}
    assert [job_id for job_id, _ in job_store(url).interrupted_jobs()] == [second]


def test_async_logic_writes_and_emits_are_checkpointed_and_survive_a_crash(
    tmp_path, job_store, monkeypatch, capsys
):
    # first and third are ``async def`` (they run on the runtime's event loop, in a context
    # of their own): what they wrote and emitted must be in their commits.
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    db, url = crashed_run(tmp_path, url, jobs=2, flow="held_async_chain")
    before = job_store(url)
    for job in before.list_jobs():
        stored = before.load_job(job["job_id"])
        assert stored is not None
        [first] = stored.activations
        kinds = [op[0] for op in first["effects"]]
        assert kinds == ["state", "append", "set", "item"]
    monkeypatch.chdir(tmp_path)
    assert main(["jobs", "resume", "--interrupted", "--store", url, "--json"]) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert len(resumed) == 2
    for job in resumed:
        assert job["status"] == "completed"
        assert job["routine_states"] == {
            "first": {"count": 1},
            "second": {"count": 1},
            "third": {"count": 1},
        }
        assert job["shared_data"] == {"first": 0, "third": 2}
        assert sorted(job["shared_log"]) == ["first", "second", "third"]
    assert (_committed(db, "first"), _committed(db, "second"), _committed(db, "third")) == (2, 2, 2)


def test_a_routine_skipped_before_the_crash_stays_skipped_after_resume(
    tmp_path, monkeypatch, capsys
):
    # picky fails on first's emit and SKIP takes it out of the job; after the crash, second
    # runs again and emits to picky, which must not run again: its data is kept unconsumed.
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    db, url = crashed_run(tmp_path, url, jobs=1, flow="held_skip", committed=("first", "picky"))
    monkeypatch.chdir(tmp_path)
    assert main(["jobs", "resume", "--interrupted", "--store", url, "--json"]) == 0
    [job] = json.loads(capsys.readouterr().out)
    assert job["status"] == "completed"
    assert job["skipped_routines"] == ["picky"]
    assert job["shared_data"] == {"picky runs": 1}
    assert [error["routine_id"] for error in job["errors"]] == ["picky"]
    assert job["unconsumed"] == {"picky": {"trigger": [{"n": 2}]}}
    assert (_committed(db, "first"), _committed(db, "picky"), _committed(db, "second")) == (1, 1, 1)
