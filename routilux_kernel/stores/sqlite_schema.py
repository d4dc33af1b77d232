"""Opening a SQLite job-store file: checks, WAL, and the versioned schema with its migrations.

The schema version is SQLite's ``user_version``. A file of a newer version, a file that
is not a database, a read-only or locked file each give a clear error; none is ever
rewritten or replaced.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from routilux_kernel.core.job_store import JobStoreError

#: A packed activation (a job row's ``first_activations``, see sqlite_writer) keeps a
#: timestamp as an integer number of ticks of 2**-22 s where that is exact: a float's
#: shortest repr costs several times more to make. Every float of 2004-2038 is a whole number
#: of ticks; any other timestamp is kept as a float. ``ticks / TICKS_PER_SECOND`` is the
#: float again, exactly.
TICKS_PER_SECOND = 4194304.0  # 2**22


def _seconds(array: str, index: int) -> str:
    """SQL for element ``index`` of a packed activation ``array`` as seconds (a REAL)."""
    element = f"json_extract({array}, '$[{index}]')"
    return (
        f"CASE json_type({array}, '$[{index}]') WHEN 'integer' "
        f"THEN {element} / {TICKS_PER_SECOND} ELSE {element} END"
    )


def _activations_view(started_at: str, finished_at: str) -> str:
    """The view of every activation, those packed in their job's row and those in rows of
    their own, with the columns of the activations table; ``started_at`` and
    ``finished_at``: SQL for a packed activation's times (``e.value`` is its array)."""
    return f"""CREATE VIEW all_activations AS
            SELECT j.job_id, json_extract(e.value, '$[0]') AS number,
                json_extract(e.value, '$[1]') AS routine_id,
                {started_at} AS started_at,
                {finished_at} AS finished_at,
                json_extract(e.value, '$[4]') AS outcome,
                json_extract(e.value, '$[5]') AS attempt,
                json_extract(e.value, '$[6]') AS error,
                json_extract(e.value, '$[7]') AS traceback,
                json_extract(e.value, '$[8]') AS consumed,
                json_extract(e.value, '$[9]') AS effects
            FROM jobs j, json_each(j.first_activations) e
            UNION ALL
            SELECT job_id, number, routine_id, started_at, finished_at, outcome, attempt, error,
                traceback, consumed, effects FROM activations"""


#: Each migration takes the schema from version ``index`` to ``index + 1``.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE flows (flow_key TEXT PRIMARY KEY, snapshot TEXT)",
        """CREATE TABLE jobs (
            job_id TEXT PRIMARY KEY, flow_id TEXT NOT NULL, flow_key TEXT, flow_source TEXT,
            status TEXT NOT NULL, created_at REAL NOT NULL, started_at REAL, finished_at REAL,
            error TEXT, traceback TEXT, owner_pid INTEGER, owner_host TEXT, owner_started TEXT,
            lease_until REAL, entry_items TEXT NOT NULL, final_state TEXT)""",
        "CREATE INDEX jobs_by_status ON jobs (status, created_at)",
        """CREATE TABLE activations (
            job_id TEXT NOT NULL, number INTEGER NOT NULL, routine_id TEXT NOT NULL,
            started_at REAL, finished_at REAL, outcome TEXT NOT NULL, attempt INTEGER NOT NULL,
            error TEXT, traceback TEXT, consumed TEXT NOT NULL, effects TEXT NOT NULL,
            PRIMARY KEY (job_id, number))""",
    ),
    (
        # version 2: ``jobs list --flow`` and pruning by age without a table scan
        "CREATE INDEX jobs_by_flow ON jobs (flow_id, created_at)",
        "CREATE INDEX jobs_by_finish ON jobs (finished_at)",
    ),
    (
        # version 3: a page of the newest jobs (the dashboard, query_jobs) without a sort
        "CREATE INDEX jobs_by_created ON jobs (created_at)",
    ),
    (
        # version 4: the activations committed in the job row's own transaction (most short
        # jobs: all of them) ride in that row, as one JSON array of rows; later ones are
        # rows of the activations table. One row write per short job instead of 1 + n.
        "ALTER TABLE jobs ADD COLUMN first_activations TEXT",
        # Every activation, wherever it is kept, for SQL read by hand (and the tests)
        _activations_view("json_extract(e.value, '$[2]')", "json_extract(e.value, '$[3]')"),
    ),
    (
        # version 5: pruning by age scans jobs_by_created (a job finished before a moment was
        # created before it), so no job pays an index entry for its finish time.
        "DROP INDEX jobs_by_finish",
    ),
    (
        # version 6: a packed activation's timestamps may be ticks (see TICKS_PER_SECOND)
        "DROP VIEW all_activations",
        _activations_view(_seconds("e.value", 2), _seconds("e.value", 3)),
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
#: Seconds a connection waits for another process's write lock before it reports it.
BUSY_TIMEOUT = 5.0


def sqlite_path(url: str) -> Path:
    """``sqlite:///rel/path.db`` (relative to the working directory) or ``sqlite:////abs.db``."""
    rest = url[len("sqlite://") :].partition("?")[0]
    if not rest.startswith("/") or rest == "/":
        raise JobStoreError(
            f"job store {url!r}: expected sqlite:///relative/path.db or sqlite:////abs/path.db"
        )
    return Path(rest[1:])  # "/rel.db" -> rel.db, "//abs.db" -> /abs.db


def connect(url: str, path: Path, *, write: bool) -> sqlite3.Connection:
    """A connection to an up-to-date store file (created and migrated when ``write``)."""
    if path.exists() and not path.is_file():
        raise JobStoreError(f"job store {url!r}: {path} is not a file")
    if write:
        _check_writable(url, path)
    elif not path.exists():
        raise JobStoreError(f"job store {url!r}: {path} does not exist (no job was stored yet)")
    try:
        connection = sqlite3.connect(
            str(path), timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
        connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
        version = connection.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise _open_error(url, path, exc) from None
    if version > SCHEMA_VERSION:
        connection.close()
        raise JobStoreError(
            f"job store {url!r}: {path} has schema version {version}, newer than this "
            f"routilux_kernel understands ({SCHEMA_VERSION}); upgrade routilux_kernel. The file "
            "was left untouched"
        )
    try:
        if write:
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            if version < SCHEMA_VERSION:
                _migrate(connection, version)
        elif version < SCHEMA_VERSION:
            connection.close()
            raise JobStoreError(
                f"job store {url!r}: {path} has schema version {version}; open it for writing "
                f"once (any routilux run or jobs resume) to migrate it to {SCHEMA_VERSION}"
            )
    except sqlite3.DatabaseError as exc:
        connection.close()
        raise _open_error(url, path, exc) from None
    return connection


def _check_writable(url: str, path: Path) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    if path.exists():
        if not os.access(path, os.W_OK):
            raise JobStoreError(
                f"job store {url!r}: {path} is read-only; give write permission or choose "
                "another store with --store / ROUTILUX_STORE"
            )
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise JobStoreError(f"job store {url!r}: cannot create folder {folder}: {exc}") from None
    if not os.access(folder, os.W_OK):
        raise JobStoreError(f"job store {url!r}: folder {folder} is read-only")


def _migrate(connection: sqlite3.Connection, version: int) -> None:
    connection.execute("BEGIN IMMEDIATE")
    try:
        # Read again under the write lock: another process may have migrated meanwhile.
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        for statements in MIGRATIONS[version:]:
            for statement in statements:
                connection.execute(statement)
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def _open_error(url: str, path: Path, exc: sqlite3.DatabaseError) -> JobStoreError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        reason = (
            f"it stayed locked by another process for {BUSY_TIMEOUT:g}s; "
            "retry when that process is done"
        )
    elif "not a database" in text or "malformed" in text:
        reason = "it is not a routilux job store (or it is corrupt); it was left untouched"
    elif "readonly" in text or "read-only" in text:
        reason = "it is read-only"
    else:
        reason = text
    return JobStoreError(f"job store {url!r}: cannot open {path}: {reason} ({exc})")
