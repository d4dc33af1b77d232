"""The entry point of routilux-postgres: registers the ``postgresql`` job-store scheme."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from routilux_kernel import hookimpl

if TYPE_CHECKING:
    from routilux_postgres.store import PostgresJobStore


def open_postgres_store(url: str) -> PostgresJobStore:
    """The store of a ``postgresql://`` URL (psycopg is imported only when one is opened)."""
    from routilux_postgres.store import PostgresJobStore

    return PostgresJobStore(url)


@hookimpl
def register_job_stores(register: Callable[..., None]) -> None:
    register("postgresql", open_postgres_store)
