"""The job store: what a durable run keeps, serialization errors, store selection, bad files."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from routilux_kernel import Flow, JobState, Routine, Runtime
from routilux_kernel.activation_policies import all_slots_ready
from routilux_kernel.cli import main
from routilux_kernel.cli.jobs_command import job_details
from routilux_kernel.core.job_store import JobStoreError
from routilux_kernel.core.value_codecs import StoreSerializationError
from routilux_kernel.stores import grouped_writer
from routilux_kernel.stores.sqlite_store import SqliteJobStore
from testsupport.job_stores import add_url_option

WAIT = 10.0  # upper bound of any wait; longer is a hang

FLOWS = Path(__file__).parent / "durable_flows"


class Forward(Routine):
    """Counts its activations in its state, logs its id and emits ``payload(n)``."""

    def __init__(self, payload: Any = None) -> None:
        super().__init__()
        self.add_slot("trigger")
        self.add_event("out")
        self.payload = payload

    def logic(self, slot_data: dict[str, Any], message: Any, job_state: Any) -> None:
        routine_id = job_state.current_routine_id
        count = job_state.get_routine_state(routine_id, {}).get("count", 0)
        job_state.update_routine_state(routine_id, {"count": count + 1})
        job_state.shared_data[routine_id] = slot_data["trigger"][0].get("n")
        n = slot_data["trigger"][0].get("n", 0)
        self.emit("out", n=n + 1, extra=self.payload)


def chain(payload: Any = None) -> Flow:
    flow = Flow("chain3")
    for routine_id in ("a", "b", "c"):
        flow.add_routine(Forward(payload if routine_id == "b" else None), routine_id)
    flow.connect("a", "out", "b", "trigger")
    flow.connect("b", "out", "c", "trigger")
    return flow


def test_a_durable_run_keeps_the_job_its_flow_and_one_row_per_activation(store_url, make_runtime):
    runtime = make_runtime(store=store_url)
    state = runtime.run(chain(), {"n": 1}, timeout=WAIT)
    assert state.status == "completed"
    runtime.store.flush()
    stored = runtime.store.load_job(state.job_id)
    assert stored is not None
    assert (stored.flow_id, stored.status) == ("chain3", "completed")
    assert stored.final_state["routine_states"] == {
        "a": {"count": 1},
        "b": {"count": 1},
        "c": {"count": 1},
    }
    assert stored.final_state["shared_data"] == {"a": 1, "b": 2, "c": 3}
    assert json.loads(stored.flow_snapshot)["connections"] == [
        "a.out -> b.trigger",
        "b.out -> c.trigger",
    ]
    assert stored.entry_items == [(1, "a", "trigger", {"n": 1})]
    rows = stored.activations
    assert [(r["routine_id"], r["outcome"], r["attempt"]) for r in rows] == [
        ("a", "completed", 0),
        ("b", "completed", 0),
        ("c", "completed", 0),
    ]
    # a consumed the entry item and routed item 2 into b, which consumed it, and so on
    assert [r["consumed"] for r in rows] == [[1], [2], [3]]
    assert all(r["started_at"] <= r["finished_at"] for r in rows)


def test_each_activation_row_repeats_the_jobs_execution_record(tmp_path, make_runtime):
    # flaky fails once and is retried; picky fails and is skipped: the store keeps one row
    # per activation, equal to the last execution record of that activation.
    from routilux_kernel import ErrorHandler, ErrorStrategy

    tries = []

    def flaky_logic(data: Any, message: Any, job_state: Any) -> None:
        tries.append(1)
        if len(tries) == 1:
            raise ConnectionError("once")
        flaky.emit("out", n=1)

    def picky_logic(data: Any, message: Any, job_state: Any) -> None:
        raise ValueError("never")

    flow = Flow("records")
    flaky = Routine()
    flaky.add_slot("trigger")
    flaky.add_event("out")
    flaky.set_logic(flaky_logic)
    flaky.set_error_handler(ErrorHandler(strategy=ErrorStrategy.RETRY, retry_delay=0.0))
    picky = Routine()
    picky.add_slot("input")
    picky.set_logic(picky_logic)
    picky.set_error_handler(ErrorHandler(strategy=ErrorStrategy.SKIP))
    flow.add_routine(flaky, "flaky")
    flow.add_routine(picky, "picky")
    flow.connect("flaky", "out", "picky", "input")
    runtime = make_runtime(store=f"sqlite:///{tmp_path}/runs.db")
    state = runtime.run(flow, timeout=WAIT)
    assert state.status == "completed"
    runtime.store.flush()
    stored = runtime.store.load_job(state.job_id)
    assert stored is not None
    keys = ("routine_id", "outcome", "started_at", "finished_at", "attempt")
    rows = [tuple(row[key] for key in keys) for row in stored.activations]
    history = [tuple(getattr(r, key) for key in keys) for r in state.execution_history]
    assert [h[:2] for h in history] == [
        ("flaky", "retried"),
        ("flaky", "completed"),
        ("picky", "skipped"),
    ]
    assert rows == history[1:]  # the retried attempt is part of its activation's row
    assert stored.activations[1]["error"] == "ValueError: never"
    # jobs show gives the whole history, the retried attempt included
    shown = job_details(runtime.store, stored)
    assert [tuple(entry[key] for key in keys) for entry in shown["execution_history"]] == history
    # a job with errors and history events keeps them: shown as the job itself has them
    snapshot = state.to_dict()
    assert snapshot["errors"] and snapshot["history"]
    assert {key: shown[key] for key in snapshot} == snapshot


def test_a_clean_jobs_history_is_kept_once_as_its_rows_and_shown_whole(tmp_path, make_runtime):
    runtime = make_runtime(store=f"sqlite:///{tmp_path}/runs.db")
    state = runtime.run(chain(), {"n": 1}, timeout=WAIT)
    runtime.store.flush()
    stored = runtime.store.load_job(state.job_id)
    # ids, status and timestamps (columns) and keys holding their clean-job defaults are
    # not repeated
    assert stored is not None
    kept = {"routine_states", "shared_data", "shared_log"}
    assert set(stored.final_state) == kept
    shown = job_details(runtime.store, stored)
    assert shown["execution_history"] == [r.to_dict() for r in state.execution_history]
    assert {key: shown[key] for key in state.to_dict()} == state.to_dict()
    timestamps = ("created_at", "started_at", "finished_at")
    assert [shown[key] for key in timestamps] == [getattr(state, key) for key in timestamps]


def test_a_commit_lands_within_the_promised_delay_without_a_flush(tmp_path, make_runtime, gates):
    # a's commit is grouped (the writer waits for others to join it) but must be readable
    # from another connection within MAX_COMMIT_DELAY of a's logic returning; b holds the
    # job open, so nothing else (no job end, no flush) pushes it out.
    from routilux_kernel.core.job_store import MAX_COMMIT_DELAY

    returned = []
    gate = gates.new()
    flow = chain()
    first = flow.routines["a"]
    plain_logic = first.logic

    def timed_logic(data: Any, message: Any, job_state: Any) -> None:
        plain_logic(data, message, job_state)
        returned.append(time.monotonic())

    first.set_logic(timed_logic)
    flow.routines["b"].set_logic(lambda data, message, job_state: gate.wait(WAIT))
    path = tmp_path / "runs.db"
    runtime = make_runtime(store=f"sqlite:///{path}")
    runtime.store.open_for_writing()
    state = runtime.exec(flow, {"n": 1})
    reader = SqliteJobStore(f"sqlite:///{path}")  # its reads use connections of their own

    def a_is_stored() -> bool:
        stored = reader.load_job(state.job_id)
        return stored is not None and any(a["routine_id"] == "a" for a in stored.activations)

    deadline = time.monotonic() + WAIT
    while not a_is_stored():
        assert time.monotonic() < deadline
        time.sleep(0.002)
    seen = time.monotonic()
    assert seen - returned[0] < MAX_COMMIT_DELAY
    gate.set()
    assert state.wait(WAIT) and state.status == "completed"


def test_the_id_a_routine_sees_is_the_stored_id(store_url, make_runtime):
    seen = []
    flow = Flow("ids")
    routine = Routine()
    routine.add_slot("trigger")
    routine.set_logic(lambda data, message, job_state: seen.append(job_state.job_id))
    flow.add_routine(routine, "only")
    runtime = make_runtime(store=store_url)
    state = runtime.run(flow, timeout=WAIT)
    runtime.store.flush()
    assert [job["job_id"] for job in runtime.store.list_jobs()] == seen == [state.job_id]


def test_an_emit_the_store_cannot_keep_fails_at_the_emit_naming_routine_key_and_type(
    tmp_path, make_runtime
):
    runtime = make_runtime(store=f"sqlite:///{tmp_path}/runs.db")
    state = runtime.run(chain(payload={"when": object()}), {"n": 1}, timeout=WAIT)
    assert state.status == "failed"
    assert isinstance(state.error, StoreSerializationError)
    message = str(state.error)
    assert "routine 'b'" in message and "emit('out')" in message
    assert "key extra.when is a object" in message and "serializer=pickle" in message
    assert state.error_routine_id == "b"
    # nothing of the refused emit was delivered: c never ran
    assert state.get_routine_state("c") is None


def test_a_state_write_the_store_cannot_keep_fails_naming_routine_and_key(tmp_path, make_runtime):
    flow = Flow("bad_state")
    routine = Routine()
    routine.add_slot("trigger")
    routine.set_logic(
        lambda data, message, job_state: job_state.update_routine_state(
            "writer", {"ok": 1, "when": {1, 2}}
        )
    )
    flow.add_routine(routine, "writer")
    runtime = make_runtime(store=f"sqlite:///{tmp_path}/runs.db")
    state = runtime.run(flow, timeout=WAIT)
    assert state.status == "failed"
    assert "update_routine_state('writer', ...): key when is a set" in str(state.error)
    assert state.get_routine_state("writer") is None  # refused before it was applied


def test_entry_params_the_store_cannot_keep_are_refused_at_exec_naming_job_and_flow(
    tmp_path, make_runtime
):
    runtime = make_runtime(store=f"sqlite:///{tmp_path}/runs.db")
    with pytest.raises(StoreSerializationError) as refused:
        runtime.exec(chain(), {"n": 1, "when": {1, 2}})
    message = str(refused.value)
    assert "of flow 'chain3': entry_params" in message and "key when is a set" in message
    assert runtime.list_jobs() == []  # nothing started


def test_a_resumed_job_is_stored_again_with_the_data_it_left_in_slots(tmp_path, make_runtime):
    # The first run leaves one item in the join (its other slot is never fed); the job is
    # resumed from its saved state under the same id, its entry routine triggered again, and
    # the store keeps the second run only: its items and its activations.
    flow = Flow("leftover")
    source = Routine()
    source.add_slot("trigger")
    source.add_event("left")
    source.set_logic(lambda data, message, job_state: source.emit("left", v=1))
    join = Routine()
    join.add_slot("left")
    join.add_slot("right")
    join.set_logic(lambda data, message, job_state: job_state.shared_log.append("joined"))
    join.set_activation_policy(all_slots_ready())
    flow.add_routine(source, "source")
    flow.add_routine(join, "join")
    flow.connect("source", "left", "join", "left")
    path = tmp_path / "runs.db"
    runtime = make_runtime(store=f"sqlite:///{path}")
    first = runtime.run(flow, {"x": 1}, timeout=WAIT)
    assert first.status == "completed" and first.unconsumed == {"join": {"left": [{"v": 1}]}}
    saved = JobState.from_dict(first.to_dict())
    second = runtime.exec(flow, {"x": 2}, job_state=saved)
    assert second.wait(WAIT) and second.status == "completed"
    runtime.store.flush()
    stored = SqliteJobStore(f"sqlite:///{path}").load_job(second.job_id)
    assert stored is not None and stored.status == "completed"
    # the data left in a slot first, then the entry routine's item
    assert [(n, rid, slot) for n, rid, slot, _ in stored.entry_items] == [
        (1, "join", "left"),
        (2, "source", "trigger"),
    ]
    assert [data for _, _, _, data in stored.entry_items] == [{"v": 1}, {"x": 2}]
    assert [a["routine_id"] for a in stored.activations] == ["source"]
    assert stored.final_state["unconsumed"] == {"join": {"left": [{"v": 1}, {"v": 1}]}}


def test_pickle_is_an_opt_in_that_keeps_any_picklable_value(store_url, make_runtime):
    runtime = make_runtime(store=add_url_option(store_url, "serializer=pickle"))
    state = runtime.run(chain(payload={"when": {1, 2}}), {"n": 1}, timeout=WAIT)
    assert state.status == "completed"
    runtime.store.flush()
    stored = runtime.store.load_job(state.job_id)
    emitted = stored.activations[1]["effects"][-1]
    assert emitted[0] == "item" and runtime.store.codec.decode(emitted[4])["extra"] == {
        "when": {1, 2}
    }
    runtime.shutdown()
    with pytest.raises(JobStoreError, match=r"keeps values as pickle.*serializer=pickle"):
        Runtime(store=store_url).exec(chain(), {"n": 1})


def test_the_store_is_chosen_by_code_then_environment_then_config(
    tmp_path, monkeypatch, make_runtime
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ROUTILUX_STORE")
    assert make_runtime().store.url == "memory"
    (tmp_path / "routilux.toml").write_text('store = "sqlite:///from_config.db"\n')
    assert make_runtime().store.url == "sqlite:///from_config.db"
    monkeypatch.setenv("ROUTILUX_STORE", "sqlite:///from_env.db")
    assert make_runtime().store.url == "sqlite:///from_env.db"
    assert make_runtime(store="memory").store.url == "memory"
    with pytest.raises(
        # routilux-postgres (installed with the repository) registers "postgresql"
        JobStoreError,
        match=r"unknown job store 'mysql'; installed: memory, postgresql, sqlite",
    ):
        make_runtime(store="mysql://localhost/x")


def _store_with_version(path: Path, version: int) -> bytes:
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version = {version}")
    connection.execute("CREATE TABLE other (x)")
    connection.commit()
    connection.close()
    return path.read_bytes()


def test_a_store_of_a_newer_schema_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "runs.db"
    before = _store_with_version(path, 99)
    from routilux_kernel.stores.sqlite_schema import SCHEMA_VERSION

    newer = rf"schema version 99, newer than .* understands \({SCHEMA_VERSION}\)"
    with pytest.raises(JobStoreError, match=newer):
        Runtime(store=f"sqlite:///{path}").exec(chain(), {"n": 1})
    assert path.read_bytes() == before


def test_a_file_that_is_not_a_store_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "runs.db"
    path.write_bytes(b"not a database, just some text " * 200)
    before = path.read_bytes()
    with pytest.raises(JobStoreError, match=r"not a routilux job store \(or it is corrupt\)"):
        Runtime(store=f"sqlite:///{path}").exec(chain(), {"n": 1})
    assert path.read_bytes() == before


def test_a_read_only_store_is_refused(tmp_path):
    path = tmp_path / "runs.db"
    store = SqliteJobStore(f"sqlite:///{path}")
    store.open_for_writing()
    store.close()
    before = path.read_bytes()
    path.chmod(0o444)
    # Root writes files whatever their mode; an immutable file it cannot write either.
    immutable = os.geteuid() == 0
    if immutable and subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
        pytest.skip("running as root on a file system without chattr +i: cannot make it read-only")
    try:
        with pytest.raises(JobStoreError, match=r"runs.db is read-only"):
            Runtime(store=f"sqlite:///{path}").exec(chain(), {"n": 1})
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    assert path.read_bytes() == before


def test_an_older_schema_is_migrated(tmp_path):
    from routilux_kernel.stores.sqlite_schema import MIGRATIONS, SCHEMA_VERSION

    path = tmp_path / "runs.db"
    connection = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        connection.execute(statement)
    connection.execute("PRAGMA user_version = 1")
    connection.commit()
    connection.close()
    with Runtime(store=f"sqlite:///{path}") as runtime:
        assert runtime.run(chain(), {"n": 1}, timeout=WAIT).status == "completed"
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    indexes = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert {"jobs_by_flow", "jobs_by_status", "jobs_by_created"} <= indexes
    assert "jobs_by_finish" not in indexes  # version 5: prune reads jobs_by_created


def test_a_version_3_store_keeps_its_activation_rows_next_to_the_new_jobs(tmp_path):
    # Up to version 3 every activation was a row of its own; from 4 those committed with
    # their job's row ride in it. A migrated file reads both, in commit order.
    from routilux_kernel.stores.sqlite_schema import MIGRATIONS

    path = tmp_path / "runs.db"
    connection = sqlite3.connect(path)
    for statements in MIGRATIONS[:3]:
        for statement in statements:
            connection.execute(statement)
    connection.execute(
        "INSERT INTO jobs (job_id, flow_id, status, created_at, finished_at, entry_items, "
        "final_state) VALUES ('old', 'chain3', 'completed', 1.0, 2.0, ?, ?)",
        ('[[1, "a", "trigger", 3]]', '{"shared_data": {"a": 3}}'),
    )
    for number, routine_id in ((1, "a"), (2, "b")):
        connection.execute(
            "INSERT INTO activations (job_id, number, routine_id, started_at, finished_at, "
            "outcome, attempt, consumed, effects) VALUES "
            "('old', ?, ?, 1.5, 1.6, 'completed', 0, ?, '[]')",
            (number, routine_id, f"[{number}]"),
        )
    connection.execute("PRAGMA user_version = 3")
    connection.commit()
    connection.close()
    with Runtime(store=f"sqlite:///{path}") as runtime:
        new = runtime.run(chain(), {"n": 1}, timeout=WAIT)
        runtime.store.flush()
        old = runtime.store.load_job("old")
        assert old is not None
        assert [(a["routine_id"], a["consumed"]) for a in old.activations] == [
            ("a", [1]),
            ("b", [2]),
        ]
        stored = runtime.store.load_job(new.job_id)
        assert stored is not None
        assert [a["routine_id"] for a in stored.activations] == ["a", "b", "c"]
        counts = {job["job_id"]: job["activations"] for job in runtime.store.list_jobs()}
        assert counts == {"old": 2, new.job_id: 3}
    connection = sqlite3.connect(path)
    assert connection.execute(
        "SELECT job_id, count(*) FROM all_activations GROUP BY job_id ORDER BY job_id = 'old'"
    ).fetchall() == [(new.job_id, 3), ("old", 2)]
    connection.close()


def test_activation_times_read_back_exactly_from_the_view_and_the_store(
    tmp_path, make_runtime, monkeypatch
):
    # A packed activation keeps its times as ticks of 2**-22 s (version 6); one written by
    # an older version kept floats. The reader and the all_activations view give both back
    # as the very floats the job recorded.
    monkeypatch.setattr(grouped_writer, "HOLD_SECONDS", WAIT)  # the job's row: packed for sure
    runtime = make_runtime(store=f"sqlite:///{tmp_path}/runs.db")
    state = runtime.run(chain(), {"n": 1}, timeout=WAIT)
    runtime.store.flush()
    recorded = [(r.routine_id, r.started_at, r.finished_at) for r in state.execution_history]
    assert all(type(t) is float and t != int(t) for _, *times in recorded for t in times)
    packed = f'[[1,"x",{1796657461.6930778!r},{1796657461.75!r},"completed",1,null,null,[1],[]]]'
    connection = sqlite3.connect(tmp_path / "runs.db")
    written = connection.execute(
        "SELECT first_activations FROM jobs WHERE job_id = ?", (state.job_id,)
    ).fetchone()[0]
    assert type(json.loads(written)[0][2]) is int  # ticks
    connection.execute(
        "INSERT INTO jobs (job_id, flow_id, status, created_at, entry_items, first_activations) "
        "VALUES ('older', 'x', 'completed', 1.0, '[]', ?)",
        (packed,),
    )
    connection.commit()
    view = connection.execute(
        "SELECT job_id, routine_id, started_at, finished_at FROM all_activations "
        "ORDER BY job_id = 'older', number"
    ).fetchall()
    connection.close()
    assert view == [(state.job_id, *row) for row in recorded] + [
        ("older", "x", 1796657461.6930778, 1796657461.75)
    ]
    stored = runtime.store.load_job(state.job_id)
    assert stored is not None
    assert [(a["routine_id"], a["started_at"], a["finished_at"]) for a in stored.activations] == (
        recorded
    )
    older = runtime.store.load_job("older")
    assert older is not None
    assert (older.activations[0]["started_at"], older.activations[0]["finished_at"]) == (
        1796657461.6930778,
        1796657461.75,
    )


def test_one_batch_of_jobs_of_two_flows_and_two_outcomes_keeps_each_its_own(
    tmp_path, make_runtime, monkeypatch
):
    # The jobs' rows of one transaction share a statement; a column with one value in all of
    # them (flow, status, owner) is bound once. Here flow and status vary within the batch.
    monkeypatch.setattr(grouped_writer, "HOLD_SECONDS", WAIT)  # all held until the flush

    def fail_odd(data: Any, message: Any, job_state: Any) -> None:
        if data["trigger"][0]["n"] % 2:
            raise ValueError(f"odd {data['trigger'][0]['n']}")
        job_state.shared_data["n"] = data["trigger"][0]["n"]

    picky = Flow("picky")
    routine = Routine()
    routine.add_slot("trigger")
    routine.set_logic(fail_odd)
    picky.add_routine(routine, "only")
    runtime = make_runtime(store=f"sqlite:///{tmp_path}/runs.db")
    states = [runtime.exec(picky if n % 3 else chain(), {"n": n}) for n in range(60)]
    assert runtime.wait_until_all_jobs_finished(WAIT)
    runtime.store.flush()
    for n, state in enumerate(states):
        stored = runtime.store.load_job(state.job_id)
        assert stored is not None
        expected = "failed" if n % 3 and n % 2 else "completed"
        assert (stored.flow_id, stored.status) == (state.flow_id, expected)
        assert stored.entry_items[0][3] == {"n": n}
        assert stored.final_state is not None
        assert stored.final_state["shared_data"] == dict(state.shared_data)
        assert (stored.error is None) == (expected == "completed")
        if stored.error is not None:
            assert stored.error == f"ValueError: odd {n}"


def test_a_job_whose_activations_span_transactions_reads_them_in_commit_order(
    tmp_path, make_runtime, gates
):
    # a is committed with the job's row; b waits at a gate until that is on disk, so b and
    # c are committed later, as rows of their own.
    gate = gates.new()
    flow = chain()
    second = flow.routines["b"]
    plain_logic = second.logic

    def held_logic(data: Any, message: Any, job_state: Any) -> None:
        assert gate.wait(WAIT)
        plain_logic(data, message, job_state)

    second.set_logic(held_logic)
    runtime = make_runtime(store=f"sqlite:///{tmp_path}/runs.db")
    state = runtime.exec(flow, {"n": 1})
    deadline = time.monotonic() + WAIT
    first = runtime.store.load_job(state.job_id)
    while first is None or not first.activations:
        assert time.monotonic() < deadline
        time.sleep(0.002)
        first = runtime.store.load_job(state.job_id)
    assert [a["routine_id"] for a in first.activations] == ["a"]
    gate.set()
    assert state.wait(WAIT) and state.status == "completed"
    runtime.store.flush()
    stored = runtime.store.load_job(state.job_id)
    assert stored is not None
    assert [(a["routine_id"], a["consumed"]) for a in stored.activations] == [
        ("a", [1]),
        ("b", [2]),
        ("c", [3]),
    ]
    routed = [e[:4] for e in stored.activations[0]["effects"] if e[0] == "item"]
    assert routed == [["item", 2, "b", "trigger"]]
    assert runtime.store.list_jobs()[0]["activations"] == 3


def test_a_failed_write_fails_the_job_and_keeps_what_was_committed(tmp_path, make_runtime, gates):
    path = tmp_path / "runs.db"
    runtime = make_runtime(store=f"sqlite:///{path}")
    first = runtime.run(chain(), {"n": 1}, timeout=WAIT)
    runtime.store.flush()
    # A store that cannot grow any more: SQLite reports "database or disk is full". VACUUM
    # first, so no free page is left for the next writes to reuse; the limit cannot go below
    # the file's size, so asking for 1 page pins it at exactly that size.
    connection = runtime.store._writer._connection
    connection.execute("VACUUM")
    connection.execute("PRAGMA max_page_count = 1")
    gate = gates.new()
    flow = chain()
    held = flow.routines["c"]
    held.set_logic(lambda data, message, job_state: gate.wait(WAIT))
    # The new job itself (its entry data needs new pages) cannot be written; it is handed
    # to the store inside exec, so this flush is owed the failure.
    second = runtime.exec(flow, {"n": 1, "big": "x" * 20000})
    with pytest.raises(JobStoreError, match=r"a write failed .*full.*what was committed"):
        runtime.store.flush(WAIT)
    gate.set()  # c ends after the failure is known: the job fails at the latest there
    assert second.wait(WAIT)
    assert second.status == "failed" and "a write failed" in str(second.error)
    reader = SqliteJobStore(f"sqlite:///{path}")
    kept = reader.load_job(first.job_id)
    assert kept.status == "completed" and len(kept.activations) == 3


def test_jobs_list_show_and_prune_on_the_command_line(store_url, make_runtime, capsys):
    url = store_url
    runtime = make_runtime(store=url)
    states = [runtime.run(chain(), {"n": i}, timeout=WAIT) for i in range(3)]
    runtime.shutdown()
    capsys.readouterr()
    assert main(["jobs", "list", "--store", url, "--json", "--limit", "2"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [job["job_id"] for job in listed] == [states[2].job_id, states[1].job_id]
    assert listed[0]["status"] == "completed" and listed[0]["activations"] == 3
    assert main(["jobs", "list", "--store", url, "--json", "--flow", "other"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["jobs", "show", states[0].job_id, "--store", url, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["job_id"] == states[0].job_id and shown["flow_id"] == "chain3"
    assert shown["status"] == "completed"
    assert shown["routine_states"] == {"a": {"count": 1}, "b": {"count": 1}, "c": {"count": 1}}
    assert shown["shared_data"] == {"a": 0, "b": 1, "c": 2}
    assert [row["routine_id"] for row in shown["activations"]] == ["a", "b", "c"]
    assert main(["jobs", "show", "nope", "--store", url]) == 2
    assert "job 'nope' is not in job store" in capsys.readouterr().err
    assert main(["jobs", "prune", "--older-than", "1h", "--store", url]) == 0
    assert "pruned 0 finished jobs" in capsys.readouterr().out
    assert main(["jobs", "prune", "--older-than", "0s", "--store", url]) == 0
    assert "pruned 3 finished jobs" in capsys.readouterr().out
    assert main(["jobs", "prune", "--older-than", "soon", "--store", url]) == 2
    assert "expected a number and a unit" in capsys.readouterr().err


def test_run_stores_every_job_under_the_working_directory_by_default(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ROUTILUX_STORE")
    code = main(["run", str(FLOWS / "chain.yaml"), "--jobs", "3", "--json"])
    assert code == 0
    ran = [record["job_id"] for record in json.loads(capsys.readouterr().out)]
    assert (tmp_path / ".routilux" / "runs.db").is_file()
    assert main(["jobs", "list", "--json"]) == 0
    stored = json.loads(capsys.readouterr().out)
    assert sorted(job["job_id"] for job in stored) == sorted(ran)
    assert {job["status"] for job in stored} == {"completed"}
    assert sys.path  # the flow file's folder was put on sys.path by run, as before
