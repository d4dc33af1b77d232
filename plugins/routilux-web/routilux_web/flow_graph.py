"""Lay a stored flow definition out as boxes and arrows, drawn as SVG by the templates.

The layout is layered, left to right: a routine sits one column right of the furthest
routine that feeds it, so the data path reads from left to right. No JavaScript is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BOX_WIDTH = 150
BOX_HEIGHT = 40
COLUMN_GAP = 70
ROW_GAP = 30
MARGIN = 10


@dataclass(frozen=True)
class GraphBox:
    routine_id: str
    x: int
    y: int
    status: str  # a routine status of routine_statuses(), or "" when not drawn for a job


@dataclass(frozen=True)
class GraphArrow:
    source: str
    target: str
    label: str  # "event -> slot"
    path: str  # SVG path data


@dataclass(frozen=True)
class FlowGraph:
    boxes: list[GraphBox]
    arrows: list[GraphArrow]
    width: int
    height: int
    box_width: int = BOX_WIDTH
    box_height: int = BOX_HEIGHT


def parse_connection(text: str) -> tuple[str, str, str, str]:
    """``"a.out -> b.in"`` as ``(a, out, b, in)``."""
    source, _, target = text.partition("->")
    source_id, _, event = source.strip().rpartition(".")
    target_id, _, slot = target.strip().rpartition(".")
    return source_id, event, target_id, slot


def lay_out(definition: dict[str, Any] | None, statuses: dict[str, str] | None = None) -> FlowGraph:
    """The graph of a flow definition (``Flow.to_dict``); boxes coloured by ``statuses``."""
    if not definition:
        return FlowGraph([], [], 0, 0)
    routine_ids = list(definition.get("routines") or {})
    links = [parse_connection(text) for text in definition.get("connections") or []]
    links = [link for link in links if link[0] in routine_ids and link[2] in routine_ids]
    columns = _columns(routine_ids, [(link[0], link[2]) for link in links])
    rows_used: dict[int, int] = {}
    places: dict[str, tuple[int, int]] = {}
    for routine_id in routine_ids:
        column = columns[routine_id]
        row = rows_used.get(column, 0)
        rows_used[column] = row + 1
        places[routine_id] = (
            MARGIN + column * (BOX_WIDTH + COLUMN_GAP),
            MARGIN + row * (BOX_HEIGHT + ROW_GAP),
        )
    statuses = statuses or {}
    boxes = [
        GraphBox(routine_id, *places[routine_id], statuses.get(routine_id, ""))
        for routine_id in routine_ids
    ]
    arrows = [
        GraphArrow(source, target, f"{event} → {slot}", _path(places[source], places[target]))
        for source, event, target, slot in links
    ]
    width = MARGIN * 2 + (max(columns.values(), default=0) + 1) * (BOX_WIDTH + COLUMN_GAP)
    height = MARGIN * 2 + max(rows_used.values(), default=0) * (BOX_HEIGHT + ROW_GAP)
    return FlowGraph(boxes, arrows, width - COLUMN_GAP, height - ROW_GAP)


def _columns(routine_ids: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """The longest path from a routine nobody feeds; edges closing a cycle are left out."""
    feeders: dict[str, list[str]] = {routine_id: [] for routine_id in routine_ids}
    for source, target in edges:
        feeders[target].append(source)
    columns: dict[str, int] = {}
    visiting: set[str] = set()

    def column_of(routine_id: str) -> int:
        if routine_id in columns:
            return columns[routine_id]
        visiting.add(routine_id)
        deepest = -1
        for source in feeders[routine_id]:
            if source not in visiting:  # a cycle: this arrow points backwards
                deepest = max(deepest, column_of(source))
        visiting.discard(routine_id)
        columns[routine_id] = deepest + 1
        return deepest + 1

    for routine_id in routine_ids:
        column_of(routine_id)
    return columns


def _path(source: tuple[int, int], target: tuple[int, int]) -> str:
    x1, y1 = source[0] + BOX_WIDTH, source[1] + BOX_HEIGHT // 2
    x2, y2 = target[0], target[1] + BOX_HEIGHT // 2
    if x2 <= x1:  # backwards (a cycle) or same column: loop around below the boxes
        below = max(source[1], target[1]) + BOX_HEIGHT + ROW_GAP // 2
        return f"M{x1},{y1} C{x1 + 40},{below} {x2 - 40},{below} {x2},{y2}"
    middle = (x1 + x2) // 2
    return f"M{x1},{y1} C{middle},{y1} {middle},{y2} {x2},{y2}"
