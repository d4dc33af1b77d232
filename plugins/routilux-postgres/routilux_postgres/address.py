"""What a ``postgresql://`` store URL says: the libpq connection, and the store's own options.

The URL is a libpq connection URI (``postgresql://user:secret@db.internal:5432/app``, or
``postgresql://user@/app?host=/run/postgresql`` for a unix socket) plus options of the store,
which are taken out before the rest goes to libpq:

- ``schema``: the PostgreSQL schema holding the store's tables (default ``public``);
- ``serializer``: ``json`` (default) or ``pickle``, as for the SQLite store;
- ``pool_max``: the most connections one process opens (default 4).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from routilux_kernel.core.job_store import JobStoreError

#: The store's own URL options and their defaults; every other option is libpq's.
STORE_OPTIONS = {"schema": "public", "serializer": "json", "pool_max": "4"}
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


@dataclass(frozen=True)
class StoreAddress:
    """A parsed store URL."""

    url: str  # as shown to people: the password, if any, replaced by ***
    conninfo: str  # what libpq gets: the URL without the store's options
    schema: str
    serializer: str
    pool_max: int


def parse_address(url: str) -> StoreAddress:
    """Split ``url`` into libpq's part and the store's options; a bad option is an error."""
    parts = urlsplit(url)
    shown = _without_password(url)
    if parts.scheme != "postgresql":
        raise JobStoreError(f"job store {shown!r}: expected a postgresql://... URL")
    ours = dict(STORE_OPTIONS)
    theirs = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in ours:
            ours[key] = value
        else:
            theirs.append((key, value))
    if not _SCHEMA_NAME.fullmatch(ours["schema"]):
        raise JobStoreError(
            f"job store {shown!r}: option schema={ours['schema']!r} is not a plain PostgreSQL "
            "name (letters, digits and _, not starting with a digit, at most 63)"
        )
    try:
        pool_max = int(ours["pool_max"])
    except ValueError:
        pool_max = 0
    if pool_max < 2:
        # The writer holds one connection while it commits; reads and claims need another.
        raise JobStoreError(
            f"job store {shown!r}: option pool_max={ours['pool_max']!r} must be a whole "
            "number of at least 2"
        )
    conninfo = urlunsplit(parts._replace(query=urlencode(theirs)))
    return StoreAddress(shown, conninfo, ours["schema"], ours["serializer"], pool_max)


def _without_password(url: str) -> str:
    """``url`` fit for messages and listings: a password in it (user:pw@ or ?password=) hidden."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(key == "password" for key, _ in pairs):
        query = urlencode([(k, "***" if k == "password" else v) for k, v in pairs])
    return urlunsplit(parts._replace(netloc=netloc, query=query))
