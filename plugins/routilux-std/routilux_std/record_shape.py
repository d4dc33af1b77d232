"""How records travel between std routines: one ``record``, or a chunk of ``records``.

Sources emit chunks (``records=[...]``) so a large file is not one event per line; routines
that work record by record keep the shape they were given: a chunk in, a chunk out. An emit
with other keys next to ``record`` (an HTTP ``response(record, status, body, headers)``) is
one record holding all of them; data with neither key is taken whole as one record.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from routilux_kernel import Routine

#: The params of every event that carries records.
RECORD_PARAMS = ("record", "records")


def incoming(
    slot_data: dict[str, list[dict[str, Any]]], slot: str
) -> Iterator[tuple[list[Any], bool]]:
    """Yield (records, came_as_chunk) for each item queued in ``slot``."""
    for item in slot_data.get(slot, ()):
        if "records" in item:
            yield list(item["records"]), True
        elif len(item) == 1 and "record" in item:
            yield [item["record"]], False
        else:
            yield [item], False


def send(routine: Routine, event: str, records: list[Any], as_chunk: bool) -> None:
    """Emit ``records`` from ``event`` in the shape they arrived in (nothing for an empty chunk)."""
    if as_chunk:
        if records:
            routine.emit(event, records=records)
        return
    for record in records:
        routine.emit(event, record=record)
