"""Compact JSON text of small values, on the hot path of a durable run.

``json.dumps`` builds a new encoder on every call that passes options, and even the
default one builds its C encoder per call; for the few dozen bytes an emit or a state
write holds, that setup costs several times the encoding. Here the C encoder is built
once per kind of text and reused (it keeps no state between calls: no circular-reference
markers, so a cycle ends in ``RecursionError``, which callers report).
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable
from typing import Any

_SEPARATORS = (",", ":")


def _encoder(default: Callable[[Any], Any], allow_nan: bool) -> Callable[[Any], str]:
    encode_chunks = _chunk_encoder(default, allow_nan)
    if encode_chunks is None:  # an interpreter without CPython's C accelerator
        return json.JSONEncoder(default=default, allow_nan=allow_nan, separators=_SEPARATORS).encode

    def encode(value: Any) -> str:
        if isinstance(value, str):  # the C encoder takes containers and scalars, not str
            return json.encoder.encode_basestring_ascii(value)
        return "".join(encode_chunks(value, 0))

    return encode


def _chunk_encoder(
    default: Callable[[Any], Any], allow_nan: bool
) -> Callable[[Any, int], list[str]] | None:
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return None
    return make(
        None,  # no markers: see the module docstring
        default,
        json.encoder.encode_basestring_ascii,
        None,  # no indent
        _SEPARATORS[1],
        _SEPARATORS[0],
        False,  # sort_keys
        False,  # skipkeys
        allow_nan,
    )


def _refuse(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


#: Strict JSON (no NaN/Infinity, no fallback): raises TypeError/ValueError/RecursionError.
strict_json: Callable[[Any], str] = _encoder(_refuse, allow_nan=False)
#: JSON for a record meant to be read back by people: what JSON cannot hold becomes its repr.
lenient_json: Callable[[Any], str] = _encoder(repr, allow_nan=True)
#: The C encoder behind ``strict_json`` (None without CPython's accelerator): for a dict or
#: list, ``"".join(strict_chunks(value, 0))`` is ``strict_json(value)`` minus a call layer.
strict_chunks = _chunk_encoder(_refuse, allow_nan=False)
#: The same behind ``lenient_json``.
lenient_chunks = _chunk_encoder(repr, allow_nan=True)
#: JSON text of a str (a routine id, slot name or key): one C call, no encoder around it.
json_string: Callable[[str], str] = json.encoder.encode_basestring_ascii
