"""How a job store turns emitted data and state values into text: JSON, or pickle on request.

Values are encoded when they are emitted or written, so data a store cannot keep is an
error at the emit or state update that introduced it, naming the routine, key and type.
"""

from __future__ import annotations

import base64
import pickle
from typing import Any

from routilux_kernel.core.errors import RoutiluxError
from routilux_kernel.core.json_text import json_string, strict_chunks, strict_json


class StoreSerializationError(RoutiluxError, TypeError):
    """A value cannot be kept by the job store's serializer."""


class ValueCodec:
    """JSON text (the default): lists, dicts with string keys, str, numbers, bool, None."""

    name = "json"

    def encode(self, value: Any, where: str) -> str:
        """JSON text of ``value``; ``where`` names what wrote it (routine, emit or key). The
        hot path calls :meth:`quick` and this only where that raised, so the text naming the
        writer is made only then."""
        try:
            return strict_json(value)
        except RecursionError:
            raise StoreSerializationError(
                f"{where}: a {type(value).__name__} that contains itself (or is nested too "
                "deeply) cannot be kept as JSON by the job store"
            ) from None
        except (TypeError, ValueError) as exc:
            path, culprit = _first_unserializable(value, "")
            raise StoreSerializationError(
                f"{where}: {'value' if not path else 'key ' + path} is a "
                f"{type(culprit).__name__} ({culprit!r:.80}), which the job store cannot keep "
                f"as JSON ({exc}); keep JSON data (str, int, float, bool, None, list, dict with "
                "str keys) in emits and job state, or open the store with ?serializer=pickle"
            ) from None

    def quick(self, value: Any) -> str:
        """What :meth:`encode` returns, or any exception where it would refuse ``value``:
        the hot path of a durable run calls this, and calls ``encode`` with the name of the
        writer (which takes a function or a formatted text to build) only when it raises."""
        kind = type(value)
        if kind is dict and strict_chunks is not None:  # emits, state updates, entry params
            return "".join(strict_chunks(value, 0))
        if kind is str:
            return json_string(value)
        if kind is bool:
            return "true" if value else "false"
        if kind is int:
            return int.__repr__(value)
        if value is None:
            return "null"
        return strict_json(value)

    def decode(self, value: Any) -> Any:
        """The value back from the parsed JSON of :meth:`encode`."""
        return value


class PickleCodec(ValueCodec):
    """Pickle, base64 in a JSON string: any picklable value, readable only by Python."""

    name = "pickle"

    def encode(self, value: Any, where: str) -> str:
        try:
            data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise StoreSerializationError(
                f"{where}: a {type(value).__name__} cannot be pickled for the job store: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        return '"' + base64.b64encode(data).decode("ascii") + '"'

    def quick(self, value: Any) -> str:
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        return '"' + base64.b64encode(data).decode("ascii") + '"'

    def decode(self, value: Any) -> Any:
        return pickle.loads(base64.b64decode(value))  # noqa: S301 - opted in by the store URL


CODECS: dict[str, ValueCodec] = {"json": ValueCodec(), "pickle": PickleCodec()}


def codec_named(name: str, url: str) -> ValueCodec:
    try:
        return CODECS[name]
    except KeyError:
        raise RoutiluxError(
            f"job store {url!r}: unknown serializer {name!r}; known: {', '.join(CODECS)}"
        ) from None


def _first_unserializable(value: Any, path: str) -> tuple[str, Any]:
    """The path to the first part of ``value`` that JSON cannot hold, and that part."""
    found = _find(value, path)
    return found if found is not None else (path, value)


def _find(value: Any, path: str) -> tuple[str, Any] | None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{path}[{key!r}]", key
            found = _find(item, f"{path}.{key}" if path else key)
            if found is not None:
                return found
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _find(item, f"{path}[{index}]")
            if found is not None:
                return found
        return None
    if isinstance(value, float):
        return None if value == value and abs(value) != float("inf") else (path, value)
    if value is None or isinstance(value, str | int | bool):
        return None
    return path, value
