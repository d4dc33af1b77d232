"""Bounds on a parsed flow-file document: nesting depth, alias expansion, integer size.

Parsers and everything after them (checks, messages, pickling, JSON output) walk documents
recursively or build them out in full, so a hostile file must be refused before that: a
document nested thousands of levels deep, a YAML "alias bomb" (a few hundred bytes whose
aliases expand to billions of values) and an integer with more digits than Python converts
each get one problem line instead of a RecursionError, a ValueError or a stall.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from routilux_kernel.flowfiles.rendering import path_of

#: Deepest nesting of mappings and lists a flow file may have.
MAX_NESTING = 100
#: Values that YAML aliases may add to a document beyond the values written out in it.
MAX_ALIAS_VALUES = 100_000


def max_integer_digits() -> int:
    """Longest decimal integer read: the interpreter's conversion limit (4300 by default)."""
    limit = sys.get_int_max_str_digits()
    return limit if limit > 0 else 4300


class OversizedInteger:
    """Stands in for an integer too long to convert, so the problem can name its key path."""

    __slots__ = ("digits",)

    def __init__(self, digits: int) -> None:
        self.digits = digits

    def __repr__(self) -> str:
        return f"<integer of {self.digits} digits>"


def read_json_integer(text: str) -> int | OversizedInteger:
    """``json.loads(parse_int=...)``: an int, or a marker when it has too many digits."""
    digits = len(text.lstrip("-"))
    if digits > max_integer_digits():
        return OversizedInteger(digits)
    return int(text)


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def json_nesting_problem(text: str) -> str | None:
    """Where JSON text nests deeper than MAX_NESTING, as ``line L, column C: ...``; else None.

    Counted on the text, before parsing: the parser itself recurses once per level.
    Strings are blanked out (same length) so brackets inside them do not count.
    """
    blanked = _JSON_STRING.sub(lambda match: " " * len(match.group()), text)
    depth = 0
    for match in _JSON_BRACKET.finditer(blanked):
        if match.group() in "[{":
            depth += 1
            if depth > MAX_NESTING:
                offset = match.start()
                line = text.count("\n", 0, offset) + 1
                column = offset - (text.rfind("\n", 0, offset) + 1) + 1
                return (
                    f"line {line}, column {column}: nested more than {MAX_NESTING} levels "
                    "deep; a flow file may nest mappings and lists at most "
                    f"{MAX_NESTING} levels"
                )
        else:
            depth -= 1
    return None


def yaml_graph_problem(root: Any) -> str | None:
    """Why a composed YAML node graph must not be built into data, or None.

    Aliases make the graph a DAG (or, with an alias inside its own anchor, a cycle): sizes
    and depths are computed per distinct node, so a bomb is measured without expanding it.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    distinct = 0
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            children = _children(node)
            size[key] = 1 + sum(size[id(child)] for child in children)
            depth[key] = 1 + max((depth[id(child)] for child in children), default=0)
            if depth[key] > MAX_NESTING:
                return _at(
                    node,
                    f"aliases nest this document more than {MAX_NESTING} levels deep; a "
                    f"flow file may nest mappings and lists at most {MAX_NESTING} levels",
                )
            if size[key] > distinct + MAX_ALIAS_VALUES:
                return _at(
                    node,
                    f"aliases expand this document to more than {distinct + MAX_ALIAS_VALUES} "
                    f"values (at most {MAX_ALIAS_VALUES} may come from aliases); write the "
                    "values out, or use fewer aliases",
                )
            continue
        if key in size:
            continue
        if key in on_path:
            return _at(
                node,
                "an alias refers to a mapping or list that contains it (a recursive "
                "structure); a flow file must be a tree",
            )
        distinct += 1
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in size)
    return None


def _children(node: Any) -> list[Any]:
    value = node.value
    if not isinstance(value, list):
        return []  # a scalar
    children: list[Any] = []
    for item in value:
        if isinstance(item, tuple):  # a mapping: (key node, value node) pairs
            children.extend(item)
        else:
            children.append(item)
    return children


def _at(node: Any, message: str) -> str:
    mark = getattr(node, "start_mark", None)
    if mark is None:
        return message
    return f"line {mark.line + 1}, column {mark.column + 1}: {message}"


def document_problems(data: Any) -> list[str]:
    """``key.path: message`` for oversized integers and too deep nesting in parsed data.

    Walked with an explicit stack, so the walk itself never runs out of recursion.
    """
    problems: list[str] = []
    stack: list[tuple[Any, tuple[Any, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, OversizedInteger):
            problems.append(
                f"{path_of(path)}: integer of {value.digits} digits; at most "
                f"{max_integer_digits()} digits are read (write a string if it is an id)"
            )
        elif isinstance(value, dict | list):
            if len(path) >= MAX_NESTING:
                problems.append(
                    f"{path_of(path)}: nested more than {MAX_NESTING} levels deep; a flow "
                    f"file may nest mappings and lists at most {MAX_NESTING} levels"
                )
                continue
            if isinstance(value, dict):
                items = [(child, (*path, key)) for key, child in value.items()]
                items += [(key, path) for key in value if isinstance(key, OversizedInteger)]
            else:
                items = [(child, (*path, (index,))) for index, child in enumerate(value)]
            stack.extend(reversed(items))  # reported in document order
    return problems
