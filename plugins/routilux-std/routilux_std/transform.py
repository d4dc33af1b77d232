"""Record-by-record routines: map (reshape), filter (keep or reject) and split (list -> items).

All three are stateless, so several activations may run at once within one job.
"""

from __future__ import annotations

from typing import Any

from routilux_kernel import JobState
from routilux_std.base import StdRoutine
from routilux_std.errors import StdConfigError
from routilux_std.expressions import compile_expression, evaluate
from routilux_std.record_shape import RECORD_PARAMS, incoming, send

SlotData = dict[str, list[dict[str, Any]]]


class Map(StdRoutine):
    """Reshape each record with JMESPath expressions.

    ``fields`` maps each output key to a JMESPath expression evaluated on the input record;
    the output record holds exactly those keys (``keep_input`` starts from a copy of the
    input instead). Records come in one at a time (``record``) or in chunks (``records``)
    and leave in the same shape.
    """

    registered_name = "std.map"
    config_schema = {
        "fields": {
            "type": "object",
            "required": True,
            "description": "output key -> JMESPath expression on the input record",
        },
        "keep_input": {
            "type": "boolean",
            "default": False,
            "description": "start from a copy of the input record and add/replace the fields",
        },
        "drop_missing": {
            "type": "boolean",
            "default": False,
            "description": "leave out a key whose expression gives null",
        },
    }
    allows_concurrency = True

    def __init__(self) -> None:
        super().__init__()
        self.add_slot("in")
        self.add_event("out", optional=RECORD_PARAMS)

    def _prepare(self, settings: dict[str, Any], job_state: JobState | None) -> dict[str, Any]:
        who = self.who(job_state)
        settings["compiled"] = [
            (str(name), compile_expression(expr, who, f"fields.{name}"))
            for name, expr in settings["fields"].items()
        ]
        return settings

    def logic(self, slot_data: SlotData, policy_message: Any, job_state: JobState) -> None:
        settings = self.settings(job_state)
        compiled = settings["compiled"]
        keep, drop = settings["keep_input"], settings["drop_missing"]
        who = self.who(job_state)
        for records, as_chunk in incoming(slot_data, "in"):
            out = []
            for record in records:
                shaped = dict(record) if keep and isinstance(record, dict) else {}
                for name, expression in compiled:
                    value = evaluate(expression, record, who, f"fields.{name}")
                    if value is None and drop:
                        continue
                    shaped[name] = value
                out.append(shaped)
            send(self, "out", out, as_chunk)


class Filter(StdRoutine):
    """Keep the records a JMESPath condition holds for; reject the others.

    ``condition`` is evaluated on each record; a truthy result (JMESPath truth: not null,
    false, empty string, list or object) sends it to ``passed``, anything else to
    ``rejected``. Chunks stay chunks on both events.
    """

    registered_name = "std.filter"
    config_schema = {
        "condition": {
            "type": "string",
            "required": True,
            "description": "JMESPath expression; a truthy result keeps the record",
        },
    }
    allows_concurrency = True

    def __init__(self) -> None:
        super().__init__()
        self.add_slot("in")
        self.add_event("passed", optional=RECORD_PARAMS)
        self.add_event("rejected", optional=RECORD_PARAMS)

    def _prepare(self, settings: dict[str, Any], job_state: JobState | None) -> dict[str, Any]:
        settings["compiled"] = compile_expression(
            settings["condition"], self.who(job_state), "condition"
        )
        return settings

    def logic(self, slot_data: SlotData, policy_message: Any, job_state: JobState) -> None:
        condition = self.settings(job_state)["compiled"]
        who = self.who(job_state)
        for records, as_chunk in incoming(slot_data, "in"):
            passed, rejected = [], []
            for record in records:
                kept = is_truthy(evaluate(condition, record, who, "condition"))
                (passed if kept else rejected).append(record)
            send(self, "passed", passed, as_chunk)
            send(self, "rejected", rejected, as_chunk)


def is_truthy(value: Any) -> bool:
    """JMESPath truth: false, null and empty strings/lists/objects are false; 0 is true."""
    return not (value is None or value is False or value in ("", [], {}))


class Split(StdRoutine):
    """Split a list into one record per element, each with its index and the count.

    ``items`` is a JMESPath expression giving the list in each input record (default ``@``:
    the input itself, or each record of a chunk). Each element leaves as
    ``item(record=element, index=i, count=n, source=input record)``.
    """

    registered_name = "std.split"
    config_schema = {
        "items": {
            "type": "string",
            "default": "@",
            "description": "JMESPath expression giving the list to split",
        },
    }
    allows_concurrency = True

    def __init__(self) -> None:
        super().__init__()
        self.add_slot("in")
        self.add_event("item", ("record", "index", "count", "source"))

    def _prepare(self, settings: dict[str, Any], job_state: JobState | None) -> dict[str, Any]:
        settings["compiled"] = compile_expression(settings["items"], self.who(job_state), "items")
        return settings

    def logic(self, slot_data: SlotData, policy_message: Any, job_state: JobState) -> None:
        items = self.settings(job_state)["compiled"]
        who = self.who(job_state)
        for records, _ in incoming(slot_data, "in"):
            for source in records:
                found = evaluate(items, source, who, "items")
                if not isinstance(found, list):
                    raise StdConfigError(
                        f"{who}: config key 'items' ({items.expression!r}) gave "
                        f"{type(found).__name__} {str(found)[:100]}, expected a list"
                    )
                for index, element in enumerate(found):
                    self.emit("item", record=element, index=index, count=len(found), source=source)
