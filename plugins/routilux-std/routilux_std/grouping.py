"""Routines that gather records: batch (by size and time), join (N inputs) and aggregate.

They keep per-job memory only in their activation policy's per-job state, so they work the
same on every executor; none allows concurrent activations (their order matters).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from routilux_kernel import JobState
from routilux_std.base import StdRoutine
from routilux_std.errors import StdConfigError
from routilux_std.expressions import compile_expression, evaluate
from routilux_std.policies import AtEndOfJob, JoinRounds, SizeOrTime
from routilux_std.record_shape import incoming

SlotData = dict[str, list[dict[str, Any]]]


class Batch(StdRoutine):
    """Group records into batches by size and by time; the rest is flushed at the end of the job.

    A batch is emitted when ``size`` items are queued, or ``seconds`` after the first item of
    a batch arrived (when ``seconds`` is set), and once more with what is left when the job
    has nothing else to do. An incoming chunk counts as one item; its records are flattened
    into the batch. ``batch(records, count, reason)``: reason is ``size``, ``time`` or ``end``.
    """

    registered_name = "std.batch"
    config_schema = {
        "size": {"type": "integer", "default": 100, "description": "items per batch (>= 1)"},
        "seconds": {
            "type": ["number", "null"],
            "default": None,
            "description": "emit a shorter batch when its first item waited this long",
        },
    }

    def __init__(self) -> None:
        super().__init__()
        self.add_slot("in", max_queue_length=100_000)
        self.add_event("batch", ("records", "count", "reason"))
        self.set_activation_policy(SizeOrTime(self))

    def _prepare(self, settings: dict[str, Any], job_state: JobState | None) -> dict[str, Any]:
        if settings["size"] < 1:
            raise StdConfigError(
                f"{self.who(job_state)}: config key 'size' must be >= 1, got {settings['size']}"
            )
        return settings

    def logic(self, slot_data: SlotData, policy_message: Any, job_state: JobState) -> None:
        self.settings(job_state)
        records = [record for chunk, _ in incoming(slot_data, "in") for record in chunk]
        reason = (policy_message or {}).get("reason", "size")
        self.emit("batch", records=records, count=len(records), reason=reason)


class Join(StdRoutine):
    """Wait for N inputs and merge them; N and the inputs' names come from config.

    ``inputs`` is a count (slots ``in_0`` .. ``in_{N-1}``) or a list of slot names. The slots
    are made when the config is set: a flow file always sets it before its connections are
    made; in Python call ``set_config(inputs=...)`` before ``Flow.connect``. A round takes one
    item per input; ``mode`` says when it is complete: ``all`` inputs, ``any`` one, or
    ``n_of_m`` (``n`` of them). A round still short after ``timeout`` seconds, or when the
    job has nothing else to do, is emitted as it is and names the inputs it lacks.
    ``joined(values, missing, complete)``: values is a dict input -> data (``merge: dict``)
    or the list of the data that arrived, in input order (``merge: list``); data that is
    ``record=...`` is unwrapped to the record.
    """

    registered_name = "std.join"
    config_schema = {
        "inputs": {
            "type": ["integer", "array"],
            "default": 2,
            "description": "number of inputs (slots in_0..in_N-1) or a list of slot names",
        },
        "mode": {
            "type": "string",
            "default": "all",
            "enum": ["all", "any", "n_of_m"],
            "description": "when a round is complete: all inputs, any one, or n of them",
        },
        "n": {"type": "integer", "default": 1, "description": "inputs needed in n_of_m mode"},
        "merge": {
            "type": "string",
            "default": "dict",
            "enum": ["dict", "list"],
            "description": "values as input name -> data, or as a list in input order",
        },
        "timeout": {
            "type": ["number", "null"],
            "default": None,
            "description": "seconds after a round's first item to emit it incomplete",
        },
    }

    def __init__(self) -> None:
        super().__init__()
        self.add_event("joined", ("values", "missing", "complete"))
        self.set_activation_policy(JoinRounds(self))

    def _configure(self) -> None:
        try:
            names = input_names(self.option("inputs"))
        except StdConfigError:
            return  # reported with the routine's id at its first activation
        for name in names:
            if name not in self.slots:
                self.add_slot(name)

    def _prepare(self, settings: dict[str, Any], job_state: JobState | None) -> dict[str, Any]:
        who = self.who(job_state)
        try:
            settings["input_names"] = input_names(settings["inputs"])
        except StdConfigError as exc:
            raise StdConfigError(f"{who}: {exc}") from None
        count = len(settings["input_names"])
        if settings["mode"] == "n_of_m" and not 1 <= settings["n"] <= count:
            raise StdConfigError(
                f"{who}: config key 'n' must be between 1 and {count} (the inputs), "
                f"got {settings['n']}"
            )
        return settings

    def logic(self, slot_data: SlotData, policy_message: Any, job_state: JobState) -> None:
        settings = self.settings(job_state)
        message = policy_message or {}
        arrived = {name: _unwrap(items[0]) for name, items in slot_data.items() if items}
        ordered = [name for name in settings["input_names"] if name in arrived]
        values: Any
        if settings["merge"] == "dict":
            values = {name: arrived[name] for name in ordered}
        else:
            values = [arrived[name] for name in ordered]
        missing = list(message.get("missing", []))
        self.emit("joined", values=values, missing=missing, complete=not missing)


def input_names(inputs: Any) -> list[str]:
    if isinstance(inputs, int) and not isinstance(inputs, bool):
        if inputs < 1:
            raise StdConfigError(f"config key 'inputs' must be >= 1, got {inputs}")
        return [f"in_{index}" for index in range(inputs)]
    if (
        isinstance(inputs, list)
        and inputs
        and all(isinstance(name, str) and name for name in inputs)
        and len(set(inputs)) == len(inputs)
    ):
        return list(inputs)
    raise StdConfigError(
        f"config key 'inputs' expected a count or a list of distinct slot names, got {inputs!r}"
    )


def _unwrap(item: dict[str, Any]) -> Any:
    return item["record"] if set(item) == {"record"} else item


class Aggregate(StdRoutine):
    """Reduce every record of the job to one value, emitted when the job has nothing else to do.

    ``value`` (JMESPath) picks what to reduce from each record; ``operation`` is ``list``
    (collect), ``count``, ``sum`` (numbers) or ``merge_counts`` (objects of numbers, summed
    key by key: word counts). ``aggregated(value, records)`` is emitted once per job.
    """

    registered_name = "std.aggregate"
    config_schema = {
        "value": {
            "type": "string",
            "default": "@",
            "description": "JMESPath expression picking what to reduce from each record",
        },
        "operation": {
            "type": "string",
            "default": "list",
            "enum": ["list", "count", "sum", "merge_counts"],
            "description": "how the picked values are reduced",
        },
    }

    def __init__(self) -> None:
        super().__init__()
        self.add_slot("in", max_queue_length=1_000_000)
        self.add_event("aggregated", ("value", "records"))
        self.set_activation_policy(AtEndOfJob(self, wait_for_quiet=True))

    def _prepare(self, settings: dict[str, Any], job_state: JobState | None) -> dict[str, Any]:
        settings["compiled"] = compile_expression(settings["value"], self.who(job_state), "value")
        return settings

    def logic(self, slot_data: SlotData, policy_message: Any, job_state: JobState) -> None:
        settings = self.settings(job_state)
        who = self.who(job_state)
        picked = [
            evaluate(settings["compiled"], record, who, "value")
            for chunk, _ in incoming(slot_data, "in")
            for record in chunk
        ]
        operation = settings["operation"]
        result: Any
        if operation == "list":
            result = picked
        elif operation == "count":
            result = len(picked)
        elif operation == "sum":
            result = sum(_number(value, who) for value in picked)
        else:
            totals: Counter[str] = Counter()
            for value in picked:
                if not isinstance(value, dict):
                    raise StdConfigError(
                        f"{who}: config key 'value' gave {type(value).__name__} "
                        f"{str(value)[:100]}; merge_counts needs objects of numbers"
                    )
                for key, number in value.items():
                    totals[key] += _number(number, who)
            result = dict(totals.most_common())
        self.emit("aggregated", value=result, records=len(picked))


def _number(value: Any, who: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StdConfigError(
            f"{who}: config key 'value' gave {type(value).__name__} {value!r}, expected a number"
        )
    return value
