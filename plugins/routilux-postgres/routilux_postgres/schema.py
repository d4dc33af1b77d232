"""The store's tables in PostgreSQL: versioned, migrated once by whichever process comes first.

The version is the ``schema_version`` row of ``routilux_meta``. A process that opens the
store for writing takes a transaction-scoped advisory lock, reads the version again under
it, and applies the missing migrations in the same transaction, so drivers starting together
migrate exactly once. A schema of a newer version is refused and left untouched.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from routilux_kernel.core.job_store import JobStoreError

#: Each migration takes the schema from version ``index`` to ``index + 1``.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE routilux_meta (key text PRIMARY KEY, value text NOT NULL)",
        "CREATE TABLE routilux_flows (flow_key text PRIMARY KEY, snapshot text)",
        """CREATE TABLE routilux_jobs (
            job_id text PRIMARY KEY, flow_id text NOT NULL, flow_key text, flow_source text,
            status text NOT NULL, created_at double precision NOT NULL,
            started_at double precision, finished_at double precision, error text,
            traceback text, owner_pid integer, owner_host text, owner_started text,
            lease_until double precision, entry_items text NOT NULL, final_state text)""",
        "CREATE INDEX routilux_jobs_by_status ON routilux_jobs (status, created_at)",
        # seq keeps the commit order of a job's activations (recovery replays in that order).
        """CREATE TABLE routilux_activations (
            seq bigint GENERATED ALWAYS AS IDENTITY, job_id text NOT NULL,
            number integer NOT NULL, routine_id text NOT NULL, started_at double precision,
            finished_at double precision, outcome text NOT NULL, attempt integer NOT NULL,
            error text, traceback text, consumed text NOT NULL, effects text NOT NULL,
            PRIMARY KEY (job_id, number))""",
        "CREATE INDEX routilux_activations_in_order ON routilux_activations (job_id, seq)",
    ),
    (
        # version 2: ``jobs list --flow`` and pruning by age without a table scan
        "CREATE INDEX routilux_jobs_by_flow ON routilux_jobs (flow_id, created_at)",
        "CREATE INDEX routilux_jobs_by_finish ON routilux_jobs (finished_at)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
#: Any constant the processes agree on: the key of the advisory lock held while migrating.
MIGRATION_LOCK = 0x726F75_74696C  # "routil"


def schema_version(connection: psycopg.Connection) -> int:
    """The version of the tables on ``connection``'s search path; 0 when there are none."""
    if connection.execute("SELECT to_regclass('routilux_meta')").fetchone() == (None,):
        return 0
    row = connection.execute(
        "SELECT value FROM routilux_meta WHERE key = 'schema_version'"
    ).fetchone()
    return 0 if row is None else int(row[0])


def refuse_newer(url: str, schema: str, version: int) -> None:
    if version > SCHEMA_VERSION:
        raise JobStoreError(
            f"job store {url!r}: schema {schema!r} has version {version}, newer than this "
            f"routilux-postgres understands ({SCHEMA_VERSION}); upgrade routilux-postgres. "
            "The tables were left untouched"
        )


def prepare_for_writing(connection: psycopg.Connection, url: str, schema: str) -> None:
    """Create the schema and its tables, or migrate them, in one transaction."""
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        version = schema_version(connection)  # again, under the lock
        refuse_newer(url, schema, version)
        for statements in MIGRATIONS[version:]:
            for statement in statements:
                connection.execute(statement)
        if version < SCHEMA_VERSION:
            connection.execute(
                "INSERT INTO routilux_meta (key, value) VALUES ('schema_version', %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(SCHEMA_VERSION),),
            )


def check_for_reading(connection: psycopg.Connection, url: str, schema: str) -> bool:
    """True if the tables are there and current; False if no job was stored yet."""
    version = schema_version(connection)
    refuse_newer(url, schema, version)
    if 0 < version < SCHEMA_VERSION:
        raise JobStoreError(
            f"job store {url!r}: schema {schema!r} has version {version}; open it for writing "
            f"once (any routilux run or jobs resume) to migrate it to {SCHEMA_VERSION}"
        )
    return version == SCHEMA_VERSION


def check_serializer(connection: psycopg.Connection, url: str, serializer: str) -> None:
    """A store keeps the serializer it was created with; another one is refused."""
    with connection.transaction():
        connection.execute(
            "INSERT INTO routilux_meta (key, value) VALUES ('serializer', %s) "
            "ON CONFLICT (key) DO NOTHING",
            (serializer,),
        )
        row = connection.execute(
            "SELECT value FROM routilux_meta WHERE key = 'serializer'"
        ).fetchone()
    if row is not None and row[0] != serializer:
        raise JobStoreError(
            f"job store {url!r} keeps values as {row[0]}, but the URL asks for {serializer}; "
            f"use ?serializer={row[0]}"
        )
