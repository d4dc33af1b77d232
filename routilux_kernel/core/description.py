"""What a routine says about itself: slots, events, a typed config schema with defaults.

A routine class declares ``config_schema``, a mapping of config key to field spec::

    config_schema = {
        "fields": {"type": "object", "required": True, "description": "key -> expression"},
        "mode": {"type": "string", "default": "first", "enum": ["first", "all"],
                 "description": "..."},
    }

``type`` is one of :data:`FIELD_TYPES` or a list of them. ``default``, ``required`` and
``enum`` are optional; ``description`` is for people. :func:`config_problems` checks a
config against it (``routilux validate`` and flow files use it); ``describe`` turns a
routine into the plain data ``routilux routines --json`` prints and the docs are made from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from routilux_kernel.core.routine import Routine

#: Field type name -> the Python types a value of it may have (bool is not an integer here).
FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list, tuple),
    "object": (dict,),
    "null": (type(None),),
    "any": (object,),
}


def field_types(spec: dict[str, Any]) -> list[str]:
    kind = spec.get("type", "any")
    return list(kind) if isinstance(kind, (list, tuple)) else [kind]


def value_fits(value: Any, kinds: list[str]) -> bool:
    for kind in kinds:
        allowed = FIELD_TYPES.get(kind)
        if allowed is None:
            continue
        if isinstance(value, bool) and kind in ("integer", "number"):
            continue
        if isinstance(value, allowed):
            return True
    return False


def schema_problems(owner: str, schema: Any) -> list[str]:
    """What is wrong with a class's ``config_schema`` itself (a plugin author's mistake)."""
    if not isinstance(schema, dict):
        return [f"{owner}.config_schema must be a mapping of key to field spec"]
    problems = []
    for key, spec in schema.items():
        if not isinstance(spec, dict):
            problems.append(f"{owner}.config_schema[{key!r}] must be a mapping")
            continue
        unknown = [kind for kind in field_types(spec) if kind not in FIELD_TYPES]
        if unknown:
            problems.append(
                f"{owner}.config_schema[{key!r}] has unknown type(s) {unknown}; "
                f"expected one of {sorted(FIELD_TYPES)}"
            )
    return problems


def config_problems(routine: Routine, config: dict[str, Any]) -> list[tuple[str, str]]:
    """Every way ``config`` breaks the routine's schema as ``(key, message)`` (none: no schema).

    Messages name the routine's class, the key, what was expected and the keys that exist.
    """
    schema = type(routine).config_schema
    if not schema:
        return []
    name = type(routine).__name__
    known = ", ".join(sorted(schema)) or "none"
    problems = []
    for key, value in config.items():
        spec = schema.get(key)
        if spec is None:
            problems.append((key, f"{name} has no config key {key!r}; its keys are: {known}"))
            continue
        kinds = field_types(spec)
        if not value_fits(value, kinds):
            problems.append(
                (
                    key,
                    f"{name} expects {' or '.join(kinds)} for {key!r}, "
                    f"got {type(value).__name__} {_short(value)}",
                )
            )
        elif "enum" in spec and value not in spec["enum"]:
            problems.append(
                (key, f"{name} expects one of {spec['enum']!r} for {key!r}, got {_short(value)}")
            )
    for key, spec in schema.items():
        if spec.get("required") and key not in config:
            problems.append((key, f"{name} requires {key!r} ({_expects(spec)}); it is missing"))
    return problems


def describe(routine: Routine) -> dict[str, Any]:
    """Slots, events with their params, config schema and values, concurrency: plain data."""
    cls = type(routine)
    # A class's own docstring (docstrings are not inherited); the base class says nothing.
    doc = "" if cls.__module__ == __name__.rsplit(".", 1)[0] + ".routine" else cls.__doc__ or ""
    doc = doc.strip()
    return {
        "class": f"{cls.__module__}:{cls.__qualname__}",
        "description": doc.splitlines()[0] if doc else "",
        "slots": [
            {"name": slot.name, "max_queue_length": slot.max_queue_length, "on_full": slot.on_full}
            for slot in routine.slots.values()
        ],
        "events": [
            {"name": event.name, "params": list(event.params), "optional": list(event.optional)}
            for event in routine.events.values()
        ],
        "config_schema": {key: dict(spec) for key, spec in cls.config_schema.items()},
        "config": dict(routine.config),
        "allows_concurrency": cls.allows_concurrency,
        "concurrency": routine.concurrency,
    }


def _expects(spec: dict[str, Any]) -> str:
    return " or ".join(field_types(spec))


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value) if not isinstance(value, (dict, list)) or len(value) < 20 else "(large)"
    return text if len(text) <= limit else text[: limit - 3] + "..."
