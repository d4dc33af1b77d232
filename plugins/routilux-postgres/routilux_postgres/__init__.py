"""routilux-postgres: a ``postgresql://`` job store that many drivers share.

The store keeps what the built-in SQLite store keeps (jobs, activations, checkpoints) in
tables of one PostgreSQL schema, writes through a psycopg 3 connection pool, and claims
interrupted jobs with ``SELECT ... FOR UPDATE SKIP LOCKED``. See docs/scale-out.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from routilux_postgres.store import PostgresJobStore

__all__ = ["PostgresJobStore"]


def __getattr__(name: str) -> Any:
    # Lazy: the entry point imports this package, and ``routilux --help`` must not pay for
    # psycopg (tests/test_startup.py checks what start-up loads).
    if name == "PostgresJobStore":
        from routilux_postgres.store import PostgresJobStore

        return PostgresJobStore
    raise AttributeError(f"module 'routilux_postgres' has no attribute {name!r}")
