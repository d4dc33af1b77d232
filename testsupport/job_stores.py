"""Durable job stores for tests: fresh store URLs, and a look at their tables from outside.

The suites that check the job-store contract run on every durable store: the ``store_url``
fixture (``tests/conftest.py``) gives a fresh SQLite file or a fresh schema of the private
PostgreSQL server. :class:`StoreTables` reads a store's tables directly (sqlite3 or psycopg),
not through the store under test, so a count it returns is evidence, not an echo.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    from routilux_kernel.core.job_store import JobStore

#: The durable stores the contract tests run on.
DURABLE_STORES = ("sqlite", "postgresql")


def open_job_store(url: str) -> JobStore:
    """The store ``url`` names, made by the installed plugins (as ``routilux jobs`` does)."""
    from routilux_kernel.engine.store_choice import open_store
    from routilux_kernel.hooks.installed import get_plugin_manager
    from routilux_kernel.hooks.registry import registries_for

    return open_store(url, registries_for(get_plugin_manager()), "test")


def add_url_option(url: str, option: str) -> str:
    """``url`` with ``key=value`` added to its query."""
    return url + ("&" if "?" in url else "?") + option


def fresh_postgres_url(server_url: str) -> str:
    """A store URL on ``server_url`` in a schema of its own (created by the first write)."""
    return add_url_option(server_url, f"schema=t_{uuid.uuid4().hex[:16]}")


class StoreTables:
    """Raw SQL on a store's tables; write ``{jobs}`` and ``{activations}`` for their names."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.kind = url.partition(":")[0]
        if self.kind not in DURABLE_STORES:
            raise ValueError(f"StoreTables: {url!r} is not a durable store URL")

    def scalar(self, query: str) -> int:
        """The single value ``query`` returns; 0 while the tables do not exist yet."""
        rows = self.rows(query)
        return int(rows[0][0]) if rows else 0

    def rows(self, query: str) -> list[tuple]:
        if self.kind == "sqlite":
            # all_activations: also those kept in their job's row (sqlite_schema, version 4)
            return self._sqlite(query.format(jobs="jobs", activations="all_activations"))
        return self._postgres(
            query.format(jobs="routilux_jobs", activations="routilux_activations")
        )

    def _sqlite(self, query: str) -> list[tuple]:
        path = Path(self.url[len("sqlite:///") :].partition("?")[0])
        if not path.exists():
            return []
        connection = sqlite3.connect(path, timeout=5)
        try:
            return connection.execute(query).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise
        finally:
            connection.close()

    def _postgres(self, query: str) -> list[tuple]:
        import psycopg

        with self.postgres_connection() as connection:
            try:
                return connection.execute(query).fetchall()
            except psycopg.errors.UndefinedTable:
                return []

    def postgres_connection(self) -> Any:
        """A psycopg connection with the store's schema first on the search path."""
        import psycopg

        parts = urlsplit(self.url)
        pairs = parse_qsl(parts.query)
        schema = dict(pairs).get("schema", "public")
        conninfo = urlunsplit(
            parts._replace(query=urlencode([(k, v) for k, v in pairs if k != "schema"]))
        )
        return psycopg.connect(conninfo, options=f"-c search_path={schema}")
