"""Project configuration: ``routilux.toml`` or ``[tool.routilux]`` in ``pyproject.toml``.

Executor precedence (highest first): ``Runtime(executor=...)``, the flow's executor (flow
file or ``Flow.set_executor``), ``ROUTILUX_EXECUTOR``, this config, ``thread``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from routilux_kernel.core.errors import RoutiluxError

DEFAULT_EXECUTOR = "thread"
EXECUTOR_ENV = "ROUTILUX_EXECUTOR"
#: Every key the config table may hold (``registered_only`` is read by the CLI).
CONFIG_KEYS = ("executor", "registered_only", "store")


class ConfigError(RoutiluxError, ValueError):
    """A config file is unreadable or has a key of the wrong type."""


@dataclass
class ProjectConfig:
    executor: str | None = None
    executor_options: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None
    raw: dict[str, Any] = field(default_factory=dict)


def find_config(start: Path | None = None) -> ProjectConfig:
    """The nearest ``routilux.toml`` (or ``pyproject.toml`` with ``[tool.routilux]``) upward."""
    directory = (start or Path.cwd()).resolve()
    for folder in (directory, *directory.parents):
        own = folder / "routilux.toml"
        if own.is_file():
            return _parse(own, _load(own))
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file():
            table = _load(pyproject).get("tool", {}).get("routilux")
            if table is not None:
                return _parse(pyproject, table, prefix="tool.routilux.")
    return ProjectConfig()


def _load(path: Path) -> dict[str, Any]:
    import tomllib  # only when a config file exists

    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from exc


def _parse(path: Path, table: dict[str, Any], prefix: str = "") -> ProjectConfig:
    unknown = sorted(set(table) - set(CONFIG_KEYS))
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) {', '.join(prefix + key for key in unknown)}; "
            f"known keys: {', '.join(prefix + key for key in CONFIG_KEYS)}"
        )
    executor = table.get("executor")
    options: dict[str, Any] = {}
    if isinstance(executor, dict):
        options = executor.get("options", {})
        executor = executor.get("name")
        if not isinstance(options, dict):
            raise ConfigError(f"{path}: key {prefix}executor.options must be a table")
    if executor is not None and not isinstance(executor, str):
        raise ConfigError(
            f"{path}: key {prefix}executor must be an executor name or a table with 'name', "
            f"got {executor!r}"
        )
    return ProjectConfig(executor, dict(options), path, dict(table))


def configured_executor(start: Path | None = None) -> tuple[str, dict[str, Any], str]:
    """The executor name and options below code and flow level, and where they came from."""
    from_env = os.environ.get(EXECUTOR_ENV, "").strip()
    if from_env:
        return from_env, {}, f"environment variable {EXECUTOR_ENV}"
    config = find_config(start)
    if config.executor:
        return config.executor, config.executor_options, str(config.source)
    return DEFAULT_EXECUTOR, {}, "default"
