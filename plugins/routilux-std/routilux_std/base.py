"""StdRoutine: the base of every std routine, with a typed config schema read in one place.

A std routine declares ``config_schema`` (config key -> field spec, plain dicts the kernel can
read without importing this package) and ``allows_concurrency``. :meth:`StdRoutine.settings`
checks the whole config against the schema once per config change and fills in the
defaults, so a wrong key or type fails the first activation with a message naming the
routine, the key, the expected type and the keys that exist.
"""

from __future__ import annotations

from typing import Any, ClassVar

from routilux_kernel import JobState, Routine
from routilux_kernel.core.description import field_types, value_fits
from routilux_std.errors import StdConfigError


def schema_default(schema: dict[str, dict[str, Any]], key: str) -> Any:
    """The default the schema gives ``key`` (None when it gives none)."""
    return schema[key].get("default")


def type_names(spec: dict[str, Any]) -> list[str]:
    """The type names a field spec allows (the kernel reads the same schemas)."""
    return field_types(spec)


def check_config(
    schema: dict[str, dict[str, Any]], config: dict[str, Any], who: str
) -> dict[str, Any]:
    """Return the config with defaults filled in; raise StdConfigError naming ``who``."""
    known = ", ".join(sorted(schema)) or "none"
    for key in config:
        if key not in schema:
            raise StdConfigError(f"{who}: unknown config key {key!r}; its config keys: {known}")
    settings: dict[str, Any] = {}
    for key, spec in schema.items():
        if key not in config:
            if spec.get("required"):
                raise StdConfigError(
                    f"{who}: config key {key!r} is required ({spec['description']})"
                )
            settings[key] = spec.get("default")
            continue
        value = config[key]
        names = type_names(spec)
        if not value_fits(value, names):
            raise StdConfigError(
                f"{who}: config key {key!r} expected {' or '.join(names)}, "
                f"got {type(value).__name__} {value!r}"
            )
        if "enum" in spec and value not in spec["enum"]:
            choices = ", ".join(repr(choice) for choice in spec["enum"])
            raise StdConfigError(
                f"{who}: config key {key!r} must be one of {choices}, got {value!r}"
            )
        settings[key] = value
    return settings


class StdRoutine(Routine):
    """Base of the std routines: schema-checked settings and a name for error messages."""

    #: The name the plugin registers the routine under (``std.map``).
    registered_name: ClassVar[str] = "std.?"
    config_schema: ClassVar[dict[str, dict[str, Any]]] = {}
    allows_concurrency: ClassVar[bool] = False

    def __init__(self) -> None:
        super().__init__()
        self._settings: dict[str, Any] | None = None

    def __getstate__(self) -> dict[str, Any]:
        # compiled settings (closures, parsed expressions) are rebuilt where the routine runs
        state = self.__dict__.copy()
        state["_settings"] = None
        return state

    def set_config(self, **config: Any) -> None:
        super().set_config(**config)
        self._settings = None
        self._configure()

    def _configure(self) -> None:
        """Hook for routines whose slots or events come from config (join, router)."""

    def option(self, key: str) -> Any:
        """The configured value of ``key``, else its schema default."""
        return self.get_config(key, schema_default(self.config_schema, key))

    def who(self, job_state: JobState | None = None) -> str:
        """``routine 'clean' (std.map)``: how errors name this routine."""
        routine_id = job_state.current_routine_id if job_state is not None else None
        return f"routine {routine_id or '?'!r} ({self.registered_name})"

    def settings(self, job_state: JobState | None = None) -> dict[str, Any]:
        """The whole config, checked against ``config_schema``, defaults filled in."""
        if self._settings is None:
            checked = check_config(self.config_schema, self.config, self.who(job_state))
            self._settings = self._prepare(checked, job_state)
        return self._settings

    def _prepare(self, settings: dict[str, Any], job_state: JobState | None) -> dict[str, Any]:
        """Turn checked settings into what logic uses (compiled expressions...)."""
        return settings
