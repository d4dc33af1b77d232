"""Values, keys and paths of a flow file as short, one-line text for problem messages.

A flow file is untrusted input: a value may be a megabyte string, a list of a million items
or a structure shared a thousand times over by YAML aliases. Every value that goes into a
message is shortened while it is rendered (``reprlib`` stops at a few items and levels), so
rendering costs the same for a huge value as for a small one, and control characters come
out escaped so each problem stays one line.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable
from typing import Any

#: Longest rendering of one value in a message.
MAX_SHOWN = 60
#: A key shown bare in a key path must be made of these characters; others are quoted
#: (a ":" would read as the end of the path, a "." as a step into it).
_BARE_KEY_CHARACTERS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-/@+"
)
#: Path segments shown of a very deep key path (the rest is elided).
MAX_PATH_SEGMENTS = 8


class _ShortRepr(reprlib.Repr):
    """reprlib with small limits, and integers that never render all their digits."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxdict = self.maxlist = self.maxtuple = self.maxset = 4
        self.maxfrozenset = self.maxdeque = self.maxarray = 4
        self.maxstring = MAX_SHOWN
        self.maxlong = 40
        self.maxother = MAX_SHOWN

    def repr_int(self, x: int, level: int) -> str:
        # repr() of an int with more digits than the interpreter's limit raises, and one
        # just below the limit costs quadratic time to convert: count bits instead.
        if x.bit_length() > 128:
            digits = int(x.bit_length() * 0.30103) + 1
            return f"<integer of about {digits} digits>"
        return super().repr_int(x, level)

    def repr_str(self, x: str, level: int) -> str:
        return _escaped_repr(x[: self.maxstring], cut=len(x) > self.maxstring)

    def repr_instance(self, x: Any, level: int) -> str:
        try:
            text = repr(x)
        except BaseException:  # noqa: BLE001 - a broken __repr__ must not break a message
            return f"<{type(x).__name__} object>"
        return _cut(text.replace("\n", "\\n").replace("\r", "\\r"), self.maxother)


_short = _ShortRepr()


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _escaped_repr(text: str, *, cut: bool = False) -> str:
    # repr() escapes control characters but keeps other non-printable ones such as U+2028
    # (a line separator for many terminals and editors); escape those too.
    shown = repr(text)
    if not shown.isprintable():
        shown = shown.encode("unicode_escape").decode("ascii")
    return shown[:-1] + "...'" if cut else shown


def quoted(value: Any) -> str:
    """``repr(value)``, shortened while it is built, on one line."""
    return _cut(_short.repr(value), MAX_SHOWN + 10)


def show(value: Any) -> str:
    """The type and a short repr of a value: ``list [1, 2, ...]``."""
    return f"{type(value).__name__} {quoted(value)}"


def key_text(key: Any) -> str:
    """One key as it appears in a key path: bare if plain, else quoted (``''`` when empty)."""
    if isinstance(key, str) and key and set(key) <= _BARE_KEY_CHARACTERS:
        return key if len(key) <= MAX_SHOWN else quoted(key)
    return quoted(key)


def key_path(base: str, *keys: Any) -> str:
    """``base.key.key`` with each key rendered by :func:`key_text`."""
    parts = [base] if base else []
    parts += [key_text(key) for key in keys]
    return ".".join(parts)


def path_of(segments: Iterable[Any]) -> str:
    """A key path from mapping keys (anything) and list indexes (ints in a 1-tuple)."""
    text = ""
    for count, segment in enumerate(segments):
        if count == MAX_PATH_SEGMENTS:
            return text + "..."
        if isinstance(segment, tuple):
            text += f"[{segment[0]}]"
        else:
            text += ("." if text else "") + key_text(segment)
    return text or "(top level)"


def source_text(source: Any) -> str:
    """A file name as it starts a problem line: as is, unless it would break the line."""
    text = str(source)
    return text if text.isprintable() else _escaped_repr(text)


def one_line(text: str) -> str:
    """Escape what would split a message over lines (a last guard; keys are quoted before)."""
    if text.isprintable():
        return text
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text
    )


__all__ = [
    "MAX_SHOWN",
    "error_text",
    "key_path",
    "key_text",
    "one_line",
    "path_of",
    "quoted",
    "show",
    "source_text",
]


def error_text(error: BaseException) -> str:
    """``Type: message`` of an exception from user code, shortened, even if str() raises."""
    try:
        message = str(error)
    except BaseException:  # noqa: BLE001 - the message is best effort
        message = "<str() of this exception raised>"
    name = type(error).__name__
    return one_line(_cut(f"{name}: {message}" if message else name, 300))
