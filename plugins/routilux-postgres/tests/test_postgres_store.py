"""The PostgreSQL store's own faults: schema versions, bad URLs, an unreachable server, a
failed write. The contract itself is tested with the SQLite store's tests (``store_url``)."""

from __future__ import annotations

import socket
import sys
import threading
import time
from pathlib import Path

import pytest
from routilux_postgres import PostgresJobStore
from routilux_postgres.address import parse_address
from routilux_postgres.schema import MIGRATIONS

from routilux_kernel import Runtime
from routilux_kernel.cli import main
from routilux_kernel.core.errors import RoutiluxError
from routilux_kernel.core.job_store import JobStoreError
from testsupport.job_stores import StoreTables, fresh_postgres_url

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
from test_job_store import chain  # noqa: E402  the kernel's job-store flow

WAIT = 10.0


@pytest.fixture
def url(postgres_server) -> str:
    return fresh_postgres_url(postgres_server.url)


def _sql(url: str, *statements: str) -> None:
    with StoreTables(url).postgres_connection() as connection:
        for statement in statements:
            connection.execute(statement)


def test_a_schema_of_a_newer_version_is_refused_and_left_untouched(url):
    store = PostgresJobStore(url)
    store.open_for_writing()
    store.close()
    _sql(url, "UPDATE routilux_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(JobStoreError, match=r"has version 99, newer than .* understands \(2\)"):
        Runtime(store=url).exec(chain(), {"n": 1})
    reader = PostgresJobStore(url)
    with pytest.raises(JobStoreError, match=r"version 99"):
        reader.list_jobs()
    reader.close()
    tables = StoreTables(url)
    assert tables.scalar("SELECT count(*) FROM {jobs}") == 0
    assert tables.rows("SELECT value FROM routilux_meta WHERE key = 'schema_version'") == [("99",)]


def test_an_older_schema_is_refused_for_reading_and_migrated_by_the_first_write(url, capsys):
    schema = parse_address(url).schema
    _sql(
        url,
        f"CREATE SCHEMA {schema}",
        *MIGRATIONS[0],
        "INSERT INTO routilux_meta VALUES ('schema_version', '1')",
    )
    assert main(["jobs", "list", "--store", url]) == 2
    assert "has version 1; open it for writing once" in capsys.readouterr().err
    with Runtime(store=url) as runtime:
        assert runtime.run(chain(), {"n": 1}, timeout=WAIT).status == "completed"
    tables = StoreTables(url)
    assert tables.rows("SELECT value FROM routilux_meta WHERE key = 'schema_version'") == [("2",)]
    indexes = {name for (name,) in tables.rows("SELECT indexname FROM pg_indexes")}
    assert {"routilux_jobs_by_flow", "routilux_jobs_by_finish"} <= indexes


def test_drivers_starting_together_create_the_tables_once(url):
    stores = [PostgresJobStore(url) for _ in range(4)]
    threads = [threading.Thread(target=store.open_for_writing) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    for store in stores:
        assert store.failure() is None
        store.close()
    assert StoreTables(url).scalar("SELECT count(*) FROM routilux_meta") == 2  # version, serializer


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("schema=1bad;drop", r"schema='1bad;drop' is not a plain PostgreSQL name"),
        ("pool_max=1", r"pool_max='1' must be a whole number of at least 2"),
        ("serializer=yaml", r"unknown serializer .yaml.; known: json, pickle"),
    ],
)
def test_a_bad_store_option_is_refused_naming_it(url, option, message):
    with pytest.raises(RoutiluxError, match=message):  # JobStoreError is one
        PostgresJobStore(f"{url}&{option}")


def test_an_unreachable_server_is_reported_with_the_url_and_no_password():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://app:s3cret@127.0.0.1:{port}/jobs"
    with pytest.raises(JobStoreError) as caught:
        Runtime(store=url).exec(chain(), {"n": 1})
    message = str(caught.value)
    assert f"postgresql://app:***@127.0.0.1:{port}/jobs" in message
    assert "cannot connect to PostgreSQL" in message and "s3cret" not in message


def test_a_failed_write_fails_the_job_and_keeps_what_was_committed(url):
    runtime = Runtime(store=url)
    try:
        first = runtime.run(chain(), {"n": 1}, timeout=WAIT)
        runtime.store.flush()
        # From now on the server refuses any activation row with a large payload.
        _sql(
            url,
            "ALTER TABLE routilux_activations ADD CONSTRAINT small_effects "
            "CHECK (length(effects) < 1000) NOT VALID",
        )
        flow = chain(payload="x" * 20000)

        def until_the_store_failed(data, message, job_state):
            # c runs after b emitted; it ends only once b's commit was tried (and refused).
            deadline = time.monotonic() + WAIT
            while runtime.store.failure() is None and time.monotonic() < deadline:
                time.sleep(0.01)

        flow.routines["c"].set_logic(until_the_store_failed)
        second = runtime.exec(flow, {"n": 1})
        assert second.wait(WAIT)
        assert second.status == "failed" and "a write failed" in str(second.error)
        with pytest.raises(JobStoreError, match=r"a write failed .*small_effects.*was committed"):
            runtime.store.flush(WAIT)
    finally:
        runtime.shutdown(wait=True, timeout=WAIT)
    reader = PostgresJobStore(url)
    kept = reader.load_job(first.job_id)
    reader.close()
    assert kept.status == "completed" and len(kept.activations) == 3
