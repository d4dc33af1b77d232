"""Extract: pull JSON, YAML or fenced code blocks out of free text (an LLM's answer)."""

from __future__ import annotations

import json
import re
from typing import Any

from routilux_kernel import JobState
from routilux_std.base import StdRoutine
from routilux_std.errors import ExtractionError
from routilux_std.expressions import compile_expression, evaluate
from routilux_std.record_shape import incoming

SlotData = dict[str, list[dict[str, Any]]]

_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)```", re.DOTALL)


class Extract(StdRoutine):
    """Extract JSON, YAML or fenced code blocks from text such as an LLM's answer.

    ``text`` (JMESPath) picks the text from each record. ``format: json`` takes the first
    fenced block that parses as JSON, else the first ``{...}`` or ``[...]`` span that does;
    ``yaml`` the first fenced block that parses as YAML (or the whole text); ``code`` every
    fenced block, optionally only those of ``language``. ``extracted(record, value)``;
    text holding nothing of the kind goes to ``not_found(record, reason)``, or raises
    ``ExtractionError`` when ``required`` is true.
    """

    registered_name = "std.extract"
    config_schema = {
        "text": {
            "type": "string",
            "default": "text",
            "description": "JMESPath expression giving the text in each record",
        },
        "format": {
            "type": "string",
            "default": "json",
            "enum": ["json", "yaml", "code"],
            "description": "what to extract",
        },
        "language": {
            "type": ["string", "null"],
            "default": None,
            "description": "code format: keep only fenced blocks of this language",
        },
        "required": {
            "type": "boolean",
            "default": False,
            "description": "finding nothing is an error instead of a not_found event",
        },
    }
    allows_concurrency = True

    def __init__(self) -> None:
        super().__init__()
        self.add_slot("in")
        self.add_event("extracted", ("record", "value"))
        self.add_event("not_found", ("record", "reason"))

    def _prepare(self, settings: dict[str, Any], job_state: JobState | None) -> dict[str, Any]:
        settings["compiled"] = compile_expression(settings["text"], self.who(job_state), "text")
        return settings

    def logic(self, slot_data: SlotData, policy_message: Any, job_state: JobState) -> None:
        settings = self.settings(job_state)
        who = self.who(job_state)
        for records, _ in incoming(slot_data, "in"):
            for record in records:
                text = evaluate(settings["compiled"], record, who, "text")
                if not isinstance(text, str):
                    found, reason = None, f"'text' gave {type(text).__name__}, not a string"
                else:
                    found, reason = extract(text, settings["format"], settings["language"])
                if found is not None:
                    self.emit("extracted", record=record, value=found)
                elif settings["required"]:
                    raise ExtractionError(f"{who}: {reason}")
                else:
                    self.emit("not_found", record=record, reason=reason)


def extract(text: str, kind: str, language: str | None = None) -> tuple[Any, str]:
    """Return (value, "") or (None, why nothing was found)."""
    blocks = [(match.group(1).lower(), match.group(2)) for match in _FENCE.finditer(text)]
    if kind == "code":
        wanted = [body for lang, body in blocks if language is None or lang == language.lower()]
        if wanted:
            return wanted, ""
        return None, f"no fenced code block{f' of language {language!r}' if language else ''}"
    if kind == "json":
        for _, body in blocks:
            try:
                return json.loads(body), ""
            except json.JSONDecodeError:
                continue
        value = _first_json_span(text)
        return (value, "") if value is not None else (None, "no JSON object or array in the text")
    import yaml  # PyYAML only once YAML is asked for: registering the plugin stays cheap

    for _, body in blocks or [("", text)]:
        try:
            value = yaml.safe_load(body)
        except yaml.YAMLError:
            continue
        if isinstance(value, dict | list):
            return value, ""
    return None, "no YAML mapping or list in the text"


def _first_json_span(text: str) -> Any:
    decoder = json.JSONDecoder()
    for index, char in enumerate(text):
        if char in "{[":
            try:
                value, _ = decoder.raw_decode(text, index)
            except json.JSONDecodeError:
                continue
            return value
    return None
