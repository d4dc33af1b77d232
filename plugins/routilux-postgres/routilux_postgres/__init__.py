"""routilux-postgres: a ``postgresql://`` job store that many drivers share.

The store keeps what the built-in SQLite store keeps (jobs, activations, checkpoints) in
tables of one PostgreSQL schema, writes through a psycopg 3 connection pool, and claims
interrupted jobs with ``SELECT ... FOR UPDATE SKIP LOCKED``. See docs/scale-out.md.
"""

from routilux_postgres.store import PostgresJobStore

__all__ = ["PostgresJobStore"]
