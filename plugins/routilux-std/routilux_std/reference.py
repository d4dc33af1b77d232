"""Render docs/routines.md from the routines' own metadata.

python -m routilux_std.reference > docs/routines.md
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from routilux_std.base import StdRoutine, type_names
from routilux_std.catalogue import ROUTINES

INTRODUCTION = """\
# Routine reference: routilux-std

The standard routine library, installed with routilux (`plugins/routilux-std`, distribution
`routilux-std`). It is an ordinary plugin: its entry point in the group `routilux` registers
each routine through the `register_routines` hook, under the name `std.<name>`; use that name
in a flow file (`use: std.map`), or in Python with `create_routine("std.map", config)` from
`routilux_kernel.hooks.installed`.

This page is generated from the routines' metadata (`python -m routilux_std.reference >
docs/routines.md`); a test fails when it is out of date.

## Conventions

- **Records.** Events that carry data carry one `record` or a chunk of `records` (a list).
  Sources emit chunks (`chunk_size`), so a large file is not one event per line; routines
  that work record by record keep the shape they were given. An emit with other keys next
  to `record` (`response(record, status, body, headers)`) is one record holding them all;
  data with neither key is taken whole as one record.
- **Expressions** (map fields, filter and router conditions, ...) are
  [JMESPath](https://jmespath.org), with extra functions `lower(s)`, `upper(s)`,
  `split(s, sep)`, `words(s or list)` (lower-cased words), `count_values(list)` and
  `to_int(v)`. Nothing is ever evaluated as Python.
- **Templates** (paths, URLs, headers, command arguments) replace `{name}` or `{a.b}` with
  values of the record or the trigger data, and `{job_id}` with the job's id.
- **Config** is checked against the schema below at the first activation: an unknown key,
  a wrong type or a value outside its choices fails the activation with a message naming
  the routine id, the key, the expected type and the keys that exist, through the job's
  error strategy. Every std error is a `routilux_std.StdRoutineError`.
- **Concurrency.** Routines marked *allows concurrency* are stateless: several activations
  of one of them may run at once within a job (`concurrency: n` in a flow file, once the
  kernel supports it). The others gather or pace records and run one at a time.
- **End of the job.** Writers, `std.aggregate` and the last short `std.batch` or
  `std.join` round act when the job has nothing else to do. `std.aggregate` and `std.join`
  wait for a second idle look so that a batch's last flush reaches them first; a chain of
  two such waiting routines after one another is not supported yet.
- **Slots or events from config.** `std.join` makes its input slots and `std.router` its
  route events when the config is set. A flow file sets the config before it makes the
  connections; in Python call `set_config(...)` before `Flow.connect`.
- Every routine works on the `thread` and `process` executors.

## Routines

"""


def render() -> str:
    parts = [INTRODUCTION]
    parts.append("| Routine | What it does |\n|---|---|\n")
    for routine_class in ROUTINES:
        summary = _doc_lines(routine_class)[0]
        anchor = routine_class.registered_name.replace(".", "")
        parts.append(f"| [`{routine_class.registered_name}`](#{anchor}) | {summary} |\n")
    for routine_class in ROUTINES:
        parts.append("\n" + render_routine(routine_class))
    return "".join(parts)


def render_routine(routine_class: type[StdRoutine]) -> str:
    routine = routine_class()
    lines = _doc_lines(routine_class)
    out = [f"### {routine_class.registered_name}\n\n", f"{lines[0]}\n\n"]
    rest = " ".join(line.strip() for line in lines[1:]).strip()
    if rest:
        out.append(f"{rest}\n\n")
    concurrency = "allows concurrency" if routine_class.allows_concurrency else "one at a time"
    where = f"{routine_class.__module__}:{routine_class.__qualname__}"
    out.append(f"Class `{where}`; {concurrency}.\n\n")
    slots = ", ".join(f"`{name}`" for name in routine.slots) or "made from config"
    out.append(f"- Slots: {slots}\n")
    events = ", ".join(
        f"`{event.name}({', '.join(event.params)})`" for event in routine.events.values()
    )
    out.append(f"- Events: {events}\n\n")
    out.append("| Config key | Type | Default | Description |\n|---|---|---|---|\n")
    for key, spec in routine_class.config_schema.items():
        row = f"| `{key}` | {_type_text(spec)} | {_default_text(spec)} | {spec['description']} |"
        out.append(row + "\n")
    return "".join(out)


def _doc_lines(routine_class: type[StdRoutine]) -> list[str]:
    doc = inspect.cleandoc(routine_class.__doc__ or routine_class.__name__)
    paragraphs = doc.split("\n\n")
    return [paragraphs[0].replace("\n", " ")] + "\n\n".join(paragraphs[1:]).splitlines()


def _type_text(spec: dict[str, Any]) -> str:
    text = " or ".join(type_names(spec))
    if "enum" in spec:
        text += ": " + ", ".join(f"`{choice}`" for choice in spec["enum"])
    return text


def _default_text(spec: dict[str, Any]) -> str:
    if spec.get("required"):
        return "required"
    default = spec.get("default")
    return f"`{json.dumps(default)}`"


if __name__ == "__main__":
    print(render(), end="")
