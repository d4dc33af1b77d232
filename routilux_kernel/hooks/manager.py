"""The plugin manager: hookspecs, built-in plugins, installed entry points, hook objects.

:func:`create_plugin_manager` loads, in this order: the hookspecs, the built-in plugins named
by the composition root (see :func:`set_builtin_plugins`), the entry points of group
``routilux`` (filtered by ``ROUTILUX_LOAD_PLUGINS`` and ``ROUTILUX_DISABLE_PLUGINS``), then
hook objects given in code.
An installed plugin that cannot be imported, fails validation or raises in a registration
hook is left out and recorded as a :class:`PluginLoadFailure` naming its distribution,
version and the cause; everything else keeps working. Strict mode raises instead.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from routilux_kernel.core.errors import PluginError
from routilux_kernel.core.lazy_logger import logger
from routilux_kernel.hooks import specs as hookspecs
from routilux_kernel.hooks.registry import cache_registries, collect_registries, registries_for
from routilux_kernel.hooks.specs import PROJECT_NAME

ENTRY_POINT_GROUP = "routilux"
LOAD_PLUGINS_ENV = "ROUTILUX_LOAD_PLUGINS"
DISABLE_PLUGINS_ENV = "ROUTILUX_DISABLE_PLUGINS"
TRACE_PLUGINS_ENV = "ROUTILUX_TRACE_PLUGINS"
STRICT_PLUGINS_ENV = "ROUTILUX_STRICT_PLUGINS"

#: Module names of the built-in plugins, registered before anything installed. The plugin
#: system knows none of them: the composition root hands them over at import.
_builtin_plugins: tuple[str, ...] = ()


def set_builtin_plugins(module_names: Iterable[str]) -> None:
    """Name the modules every new plugin manager registers first (the composition root's job)."""
    global _builtin_plugins
    _builtin_plugins = tuple(module_names)


def builtin_plugins() -> tuple[str, ...]:
    """The module names of the built-in plugins, in registration order."""
    return _builtin_plugins


@dataclass(frozen=True)
class PluginSource:
    """Where an installed plugin comes from: its entry point and distribution."""

    entry_point: str
    target: str
    distribution: str | None
    version: str | None

    def describe(self) -> str:
        where = (
            f"{self.distribution} {self.version}" if self.distribution else "unknown distribution"
        )
        return f"plugin {self.entry_point!r} ({where}, entry point {self.target!r})"


@dataclass(frozen=True)
class PluginLoadFailure:
    """An installed plugin that was left out, and why."""

    source: PluginSource
    error: str
    exception: BaseException = field(repr=False, compare=False)

    def describe(self) -> str:
        return f"routilux {self.source.describe()} failed to load: {self.error}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "entry_point": self.source.entry_point,
            "distribution": self.source.distribution,
            "version": self.source.version,
            "error": self.error,
        }


class RoutiluxPluginManager(pluggy.PluginManager):
    """A pluggy manager that remembers where each installed plugin came from and what failed."""

    def __init__(self, *, strict: bool = False) -> None:
        super().__init__(PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        #: Raise PluginError on the first broken installed plugin instead of reporting it.
        self.strict = strict
        #: Plugin name -> origin, for every plugin loaded from an entry point.
        self.sources: dict[str, PluginSource] = {}
        #: Installed plugins that were left out, in load order.
        self.load_failures: list[PluginLoadFailure] = []
        self.tracing = False


def create_plugin_manager(
    *, load_entry_points: bool = True, plugins: Iterable[Any] = (), strict: bool | None = None
) -> RoutiluxPluginManager:
    """A new, independent plugin manager with the built-in plugins (and installed ones).

    ``plugins`` are hook objects (modules, classes, instances) registered last; one that
    fails validation raises PluginError. ``strict`` (default: ``ROUTILUX_STRICT_PLUGINS``)
    makes a broken installed plugin raise PluginError instead of being reported and skipped.
    """
    pm = RoutiluxPluginManager(strict=_env_flag(STRICT_PLUGINS_ENV) if strict is None else strict)
    for module_name in _builtin_plugins:
        pm.register(importlib.import_module(module_name), name=module_name)
    if load_entry_points:
        load_entry_point_plugins(pm)
    for plugin in plugins:
        register_plugin(pm, plugin)
    check_pending(pm)
    if _env_flag(TRACE_PLUGINS_ENV):
        trace_hook_calls(pm)
    registries_for(pm)  # a plugin given in code that fails to register raises here
    return pm


def register_plugin(pm: pluggy.PluginManager, plugin: Any, name: str | None = None) -> str:
    """Register ``plugin`` and check each of its hooks; on failure unregister it and raise."""
    if name is None and getattr(plugin, "__name__", None) is None:
        # pluggy would name an instance by its bare id; keep the class in the name.
        name = f"{type(plugin).__name__}@{id(plugin):#x}"
    label = name or _label(plugin)
    if name is not None and pm.get_plugin(name) is not None:
        raise PluginError(f"plugin name {name!r} is already taken by {pm.get_plugin(name)!r}")
    if pm.is_registered(plugin):
        raise PluginError(f"plugin {label!r} is already registered as {pm.get_name(plugin)!r}")
    try:
        registered = pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        detail = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise PluginError(f"plugin {label!r} is invalid: {detail}") from exc
    if registered is None:
        return label  # blocked by ROUTILUX_DISABLE_PLUGINS
    unknown = [
        caller.name
        for caller in pm.get_hookcallers(plugin) or []
        if not caller.has_spec()
        and any(impl.plugin is plugin and not impl.optionalhook for impl in caller.get_hookimpls())
    ]
    if unknown:
        pm.unregister(plugin, name=registered)
        raise PluginError(
            f"plugin {registered!r} implements unknown hook(s) {_with_hints(unknown)}; "
            f"routilux hooks are: {', '.join(_hook_names())}"
        )
    return registered


def check_pending(pm: pluggy.PluginManager) -> None:
    """pluggy's final check that no implementation is left without a hookspec."""
    # register_plugin already refused such plugins one by one (so each can be blamed);
    # this catches any that reached the manager another way.
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"{exc}; routilux hooks are: {', '.join(_hook_names())}") from exc


#: The ``routilux`` entry points as this process last found them (None: not looked up yet).
_found_entry_points: tuple[PluginSource, ...] | None = None
#: Entry points handed over by another process (see :func:`use_entry_points`).
_given_entry_points: tuple[PluginSource, ...] | None = None


def found_entry_points() -> tuple[PluginSource, ...] | None:
    """The installed ``routilux`` entry points as the last plugin manager of this process
    found them, before any filtering; None if none has looked yet."""
    return _found_entry_points


def use_entry_points(sources: Iterable[PluginSource] | None) -> None:
    """Load these entry points from now on instead of reading the installed metadata.

    For worker processes: their driver already read the metadata, and reading it again costs
    each worker about 30 ms (the metadata reader's imports and a walk of every installed
    distribution). None goes back to reading the metadata.
    """
    global _given_entry_points
    _given_entry_points = None if sources is None else tuple(sources)


def load_entry_point_plugins(pm: RoutiluxPluginManager) -> int:
    """Load the ``routilux`` entry points into ``pm``, each on its own; returns how many loaded.

    A plugin that cannot be imported, fails validation, registers a name that is taken
    or raises in a registration hook is left out and reported (strict mode: raises).
    """
    chosen = _env_list(LOAD_PLUGINS_ENV)
    disabled = _env_list(DISABLE_PLUGINS_ENV) or set()
    global _found_entry_points
    seen: set[str] = set()
    loaded = 0
    entry_points = _entry_points()
    found = [_source_of(entry_point) for entry_point in entry_points]
    _found_entry_points = tuple(found)
    for entry_point, source in zip(entry_points, found, strict=True):
        keys = {_normalize(source.entry_point)}
        if source.distribution:
            keys.add(_normalize(source.distribution))
        seen |= keys
        if keys & disabled:
            pm.set_blocked(source.entry_point)
            logger.info("routilux {} is disabled by {}", source.describe(), DISABLE_PLUGINS_ENV)
            continue
        if chosen is not None and not keys & chosen:
            continue
        try:
            plugin = entry_point.load()
        except Exception as exc:
            _record_failure(pm, source, f"import failed: {type(exc).__name__}: {exc}", exc)
            continue
        try:
            if plugin is None:
                raise PluginError(f"entry point {source.target!r} resolves to None")
            register_plugin(pm, plugin, name=source.entry_point)
        except PluginError as exc:
            _record_failure(pm, source, str(exc), exc)
            continue
        pm.sources[source.entry_point] = source
        loaded += 1
    for variable, names in ((LOAD_PLUGINS_ENV, chosen or set()), (DISABLE_PLUGINS_ENV, disabled)):
        for missing in sorted(names - seen):
            logger.warning(
                "{} names {!r}, but no such routilux plugin is installed", variable, missing
            )
    loaded -= _drop_failing_registrations(pm)
    return loaded


def _drop_failing_registrations(pm: RoutiluxPluginManager) -> int:
    """Collect the registries; leave out each installed plugin whose registration fails."""
    dropped = 0
    errors: list[tuple[str, PluginError]] = []

    def report(plugin_name: str, error: PluginError) -> None:
        errors.append((plugin_name, error))

    while True:
        errors.clear()
        registries = collect_registries(pm, report)
        if not errors:
            cache_registries(pm, registries)
            return dropped
        for plugin_name, error in errors:
            source = pm.sources.pop(plugin_name, None)
            if source is None:  # a built-in plugin: a kernel bug, never hidden
                raise error
            pm.unregister(name=plugin_name)
            cause = error.__cause__ if error.__cause__ is not None else error
            _record_failure(pm, source, str(error), cause)
            dropped += 1


def _record_failure(
    pm: RoutiluxPluginManager, source: PluginSource, error: str, exc: BaseException
) -> None:
    failure = PluginLoadFailure(source, error, exc)
    if pm.strict:
        raise PluginError(f"{failure.describe()} (strict mode)") from exc
    pm.load_failures.append(failure)
    logger.warning("{}; it is left out, everything else is loaded", failure.describe())


def trace_hook_calls(pm: pluggy.PluginManager) -> Callable[[], None]:
    """Log every hook call of ``pm`` (and its result) through loguru; returns an undo function."""
    pm.trace.root.setwriter(_write_trace)
    undo = pm.enable_tracing()
    if isinstance(pm, RoutiluxPluginManager):
        pm.tracing = True
    return undo


def _write_trace(message: str) -> None:
    # pluggy puts each keyword argument on its own line; one log record per call reads better.
    logger.info("plugin trace: {}", " ".join(line.strip() for line in message.splitlines()))


# -- helpers --------------------------------------------------------------------------------


def _source_of(entry_point: Any) -> PluginSource:
    if isinstance(entry_point, _GivenEntryPoint):
        return entry_point.source
    dist = getattr(entry_point, "dist", None)
    name = version = None
    if dist is not None:
        name = getattr(dist, "name", None)
        version = getattr(dist, "version", None)
    return PluginSource(entry_point.name, entry_point.value, name, version)


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def _env_list(variable: str) -> set[str] | None:
    """The comma list in ``variable``, normalized; None when unset (set but empty: no names)."""
    raw = os.environ.get(variable)
    if raw is None:
        return None
    return {_normalize(part) for part in raw.split(",") if part.strip()}


def _env_flag(variable: str) -> bool:
    return os.environ.get(variable, "").strip().lower() in ("1", "true", "yes", "on")


def _label(plugin: Any) -> str:
    return getattr(plugin, "__name__", None) or type(plugin).__name__


def _hook_names() -> list[str]:
    return sorted(
        name
        for name in vars(hookspecs)
        if hasattr(getattr(hookspecs, name), f"{PROJECT_NAME}_spec")
    )


def _with_hints(names: list[str]) -> str:
    from difflib import get_close_matches  # only when reporting a bad plugin

    known = _hook_names()
    parts = []
    for name in sorted(names):
        close = get_close_matches(name, known, n=1)
        parts.append(f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name))
    return ", ".join(parts)


class _GivenEntryPoint:
    """An entry point another process found: loaded without reading any metadata."""

    __slots__ = ("source",)

    def __init__(self, source: PluginSource) -> None:
        self.source = source

    def load(self) -> Any:
        # "module:attr.attr [extra]", as the entry point specification writes targets.
        module_name, _, attributes = self.source.target.partition(":")
        target = importlib.import_module(module_name.strip())
        for attribute in attributes.split("[", 1)[0].strip().split("."):
            if attribute:
                target = getattr(target, attribute)
        return target


def _entry_points() -> list[Any]:
    """The installed ``routilux`` entry points; the metadata reader loads only now."""
    if _given_entry_points is not None:
        return [_GivenEntryPoint(source) for source in _given_entry_points]
    try:  # the backport reads the newest metadata formats; the stdlib one suffices on 3.11+
        import importlib_metadata as metadata
    except ImportError:  # pragma: no cover
        import importlib.metadata as metadata  # type: ignore[no-redef]
    return list(metadata.entry_points(group=ENTRY_POINT_GROUP))
