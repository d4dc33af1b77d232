"""Fixtures for every test suite of the repository (tests/ and each plugin's tests/).

Tests that need something from the machine ask for it with ``require_component``: skipped
where it is missing, failed when ``ROUTILUX_REQUIRE_COMPONENTS=1`` (CI). See docs/testing.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from testsupport.components import require_component as _require_component
from testsupport.postgres_server import PostgresServer, running_postgres_server


@pytest.fixture(scope="session")
def require_component() -> Callable[..., None]:
    """``require_component(name, available=None, how_to_install=None)``: skip, or fail in CI."""
    return _require_component


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A private PostgreSQL server for the whole session, on a unix socket in a temp dir.

    Use ``postgres_server.url`` to connect; the server is stopped and its directory removed
    when the session ends. Each test should create what it needs (a database, a schema).
    """
    _require_component("postgresql")
    with running_postgres_server() as server:
        yield server
