"""The private PostgreSQL server: reachable with psql, private, and gone when stopped."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from testsupport.components import require_component
from testsupport.postgres_server import (
    PostgresServer,
    PostgresServerError,
    running_postgres_server,
)

require_component("postgresql")


def psql(server: PostgresServer, sql: str) -> str:
    completed = subprocess.run(
        server.psql_command("--tuples-only", "--no-align", "--command", sql),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.strip()


def test_the_session_server_answers_psql_over_its_private_unix_socket(
    postgres_server: PostgresServer,
) -> None:
    assert psql(postgres_server, "SELECT 1") == "1"
    # Only the socket in its own directory serves: no TCP listener to collide with others.
    assert psql(postgres_server, "SHOW listen_addresses") == ""
    socket_dir = psql(postgres_server, "SHOW unix_socket_directories")
    assert Path(socket_dir) == postgres_server.socket_dir
    assert socket_dir.startswith(str(postgres_server.base_dir))


def test_a_tcp_server_listens_on_loopback_and_is_removed_when_stopped() -> None:
    with running_postgres_server(tcp=True) as server:
        assert server.url == f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
        assert psql(server, "SELECT inet_server_addr()") == "127.0.0.1"
        psql(server, "CREATE TABLE numbers (n integer); INSERT INTO numbers VALUES (7)")
        assert psql(server, "SELECT n FROM numbers") == "7"
        base_dir = server.base_dir
    assert not base_dir.exists()
    refused = subprocess.run(
        server.psql_command("--command", "SELECT 1"), capture_output=True, text=True, timeout=30
    )
    assert refused.returncode != 0
    assert "127.0.0.1" in refused.stderr


def test_a_server_that_cannot_start_reports_the_command_and_the_server_log(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A port taken by a listener of ours makes the real server fail to bind.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setattr("testsupport.postgres_server._free_port", lambda: port)
        with pytest.raises(PostgresServerError) as failure:
            with running_postgres_server(tcp=True):
                pass  # pragma: no cover - the server must not start
    message = str(failure.value)
    assert "pg_ctl start failed" in message
    assert 'could not bind IPv4 address "127.0.0.1"' in message
    assert f"port {port}" in message
