"""Plugin manager factory: hookspecs, built-in default plugins, then installed entry points."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import pluggy

from routilux_kernel import hookspecs
from routilux_kernel.hookspecs import PROJECT_NAME
from routilux_kernel.registry import Registries, collect_registries

ENTRY_POINT_GROUP = "routilux"

DEFAULT_PLUGINS = (
    "routilux_kernel.default_plugins.thread_executor",
    "routilux_kernel.default_plugins.activation_policies",
    "routilux_kernel.default_plugins.error_strategies",
    "routilux_kernel.default_plugins.activation_runner",
)


def create_plugin_manager(
    *, load_entry_points: bool = True, plugins: Iterable[Any] = ()
) -> pluggy.PluginManager:
    """A new, independent plugin manager with the default plugins (and installed ones)."""
    import importlib

    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for module_name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name)
    if load_entry_points:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for plugin in plugins:
        pm.register(plugin)
    pm.check_pending()
    return pm


_default_lock = threading.Lock()
_default_pm: pluggy.PluginManager | None = None


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide manager used by runtimes that are not given their own."""
    global _default_pm
    with _default_lock:
        if _default_pm is None:
            _default_pm = create_plugin_manager()
        return _default_pm


def registries_for(pm: pluggy.PluginManager) -> Registries:
    """The registries of ``pm``, collected once per set of registered plugins."""
    key = frozenset(id(plugin) for plugin in pm.get_plugins())
    cached = getattr(pm, "_routilux_registries", None)
    if cached is not None and cached[0] == key:
        registries: Registries = cached[1]
        return registries
    registries = collect_registries(pm)
    pm._routilux_registries = (key, registries)  # type: ignore[attr-defined]
    return registries
