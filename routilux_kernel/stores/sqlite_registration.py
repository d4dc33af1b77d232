"""Registers the ``sqlite`` job store without importing it: sqlite3 and the writer load on use.

A program that keeps the default ``memory`` store, and ``routilux --help``, never need them.
"""

from __future__ import annotations

from collections.abc import Callable

from routilux_kernel.core.job_store import JobStore
from routilux_kernel.core.markers import hookimpl


def open_sqlite_store(url: str) -> JobStore:
    """Open the :class:`~routilux_kernel.stores.sqlite_store.SqliteJobStore` ``url`` names."""
    from routilux_kernel.stores.sqlite_store import SqliteJobStore

    return SqliteJobStore(url)


@hookimpl
def register_job_stores(register: Callable[..., None]) -> None:
    register("sqlite", open_sqlite_store)
