"""Validate: check records against a pydantic model or a JSON Schema.

pydantic and jsonschema are imported when a Validate routine prepares its settings (its
first activation), not when the plugin registers it: together they cost more start-up time
than the whole kernel, and most flows never validate.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from routilux_kernel import JobState
from routilux_std.base import StdRoutine
from routilux_std.errors import StdConfigError
from routilux_std.record_shape import RECORD_PARAMS, incoming, send

if TYPE_CHECKING:
    import pydantic

SlotData = dict[str, list[dict[str, Any]]]


class Validate(StdRoutine):
    """Check each record against a pydantic model or a JSON Schema.

    Give exactly one of ``model`` (``package.module:ClassName`` of a pydantic model) and
    ``schema`` (a JSON Schema object). Valid records go to ``valid`` (with a model: the
    model's ``model_dump()``, so values are converted, e.g. "3" -> 3); each invalid record
    goes to ``invalid(record, errors)`` with one readable message per problem.
    """

    registered_name = "std.validate"
    config_schema = {
        "model": {
            "type": ["string", "null"],
            "default": None,
            "description": "pydantic model to import, as package.module:ClassName",
        },
        "schema": {
            "type": ["object", "null"],
            "default": None,
            "description": "a JSON Schema (draft 2020-12) object",
        },
    }
    allows_concurrency = True

    def __init__(self) -> None:
        super().__init__()
        self.add_slot("in")
        self.add_event("valid", optional=RECORD_PARAMS)
        self.add_event("invalid", ("record", "errors"))

    def _prepare(self, settings: dict[str, Any], job_state: JobState | None) -> dict[str, Any]:
        who = self.who(job_state)
        model, schema = settings["model"], settings["schema"]
        if (model is None) == (schema is None):
            raise StdConfigError(f"{who}: give exactly one of config keys 'model' and 'schema'")
        if model is not None:
            settings["check"] = _model_check(_import_model(model, who))
        else:
            import jsonschema

            try:
                validator_class = jsonschema.validators.validator_for(schema)
                validator_class.check_schema(schema)
            except jsonschema.SchemaError as exc:
                raise StdConfigError(
                    f"{who}: config key 'schema' is not a valid JSON Schema: {exc.message}"
                ) from None
            settings["check"] = _schema_check(validator_class(schema))
        return settings

    def logic(self, slot_data: SlotData, policy_message: Any, job_state: JobState) -> None:
        check = self.settings(job_state)["check"]
        for records, as_chunk in incoming(slot_data, "in"):
            valid = []
            for record in records:
                value, errors = check(record)
                if errors:
                    self.emit("invalid", record=record, errors=errors)
                else:
                    valid.append(value)
            send(self, "valid", valid, as_chunk)


def _import_model(path: str, who: str) -> type[pydantic.BaseModel]:
    import pydantic

    module_name, _, class_name = path.partition(":")
    if not module_name or not class_name:
        raise StdConfigError(
            f"{who}: config key 'model' expected package.module:ClassName, got {path!r}"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise StdConfigError(
            f"{who}: config key 'model': cannot import {module_name!r}: {exc}"
        ) from None
    model = getattr(module, class_name, None)
    if not (isinstance(model, type) and issubclass(model, pydantic.BaseModel)):
        found = "nothing" if model is None else repr(model)
        raise StdConfigError(
            f"{who}: config key 'model': {path!r} is {found}, expected a pydantic model class"
        )
    return model


def _model_check(model: type[pydantic.BaseModel]) -> Any:
    import pydantic

    def check(record: Any) -> tuple[Any, list[str]]:
        try:
            return model.model_validate(record).model_dump(), []
        except pydantic.ValidationError as exc:
            return None, [
                f"{'.'.join(str(part) for part in error['loc']) or '(record)'}: {error['msg']}"
                for error in exc.errors()
            ]

    return check


def _schema_check(validator: Any) -> Any:
    def check(record: Any) -> tuple[Any, list[str]]:
        errors = [
            f"{'.'.join(str(part) for part in error.absolute_path) or '(record)'}: {error.message}"
            for error in validator.iter_errors(record)
        ]
        return record, errors

    return check
