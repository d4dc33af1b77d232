"""The process-wide plugin manager, creating registered things by name, and what is installed.

Runtimes that are not given their own plugin manager share :func:`get_plugin_manager`'s,
made on first use with the built-ins and every installed plugin.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import pluggy

from routilux_kernel.core.errors import PluginError
from routilux_kernel.core.routine import Routine
from routilux_kernel.hooks.manager import (
    PluginSource,
    RoutiluxPluginManager,
    builtin_plugins,
    check_pending,
    create_plugin_manager,
    register_plugin,
    trace_hook_calls,
)
from routilux_kernel.hooks.registry import REGISTRATION_HOOKS, registries_for

# -- the process-wide manager -----------------------------------------------------------

_default_lock = threading.RLock()
_default_pm: pluggy.PluginManager | None = None
_creating_default = False


def plugin_manager_with(
    plugins: Iterable[Any], base: pluggy.PluginManager | None = None
) -> RoutiluxPluginManager:
    """A new manager with every plugin of ``base`` (default: the process-wide one) plus ``plugins``.

    This is how ``Runtime(plugins=[...])`` gets hooks that apply to that runtime only,
    without importing the installed plugins again or touching ``base``.
    """
    if base is None:
        base = get_plugin_manager()
    pm = RoutiluxPluginManager(strict=getattr(base, "strict", False))
    for name, plugin in base.list_name_plugin():
        if plugin is None:
            pm.set_blocked(name)
        else:
            pm.register(plugin, name=name)
    pm.sources.update(getattr(base, "sources", {}))
    pm.load_failures.extend(getattr(base, "load_failures", []))
    for plugin in plugins:
        register_plugin(pm, plugin)
    check_pending(pm)
    if getattr(base, "tracing", False):
        trace_hook_calls(pm)
    registries_for(pm)
    return pm


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide manager used by runtimes that are not given their own."""
    global _default_pm, _creating_default
    with _default_lock:
        if _default_pm is None:
            if _creating_default:  # re-entered from a plugin being imported: fail, not hang
                raise PluginError(
                    "get_plugin_manager() was called while the plugins were being loaded "
                    "(from a plugin's import or registration hook); defer it to run time"
                )
            _creating_default = True
            try:
                _default_pm = create_plugin_manager()
            finally:
                _creating_default = False
        return _default_pm


# -- creating registered things by name ---------------------------------------------------


def create_routine(
    name: str,
    config: dict[str, Any] | None = None,
    plugin_manager: pluggy.PluginManager | None = None,
) -> Routine:
    """A new instance of the routine a plugin registered as ``name``, with ``config`` set."""
    registries = registries_for(plugin_manager or get_plugin_manager())
    return registries.create_routine(name, config)


def create_activation_policy(
    name: str,
    options: dict[str, Any] | None = None,
    plugin_manager: pluggy.PluginManager | None = None,
) -> Any:
    """The activation policy a plugin registered as ``name``, made with ``options``."""
    registries = registries_for(plugin_manager or get_plugin_manager())
    return registries.create_activation_policy(name, options)


# -- what is installed ----------------------------------------------------------------------


def describe_plugins(pm: pluggy.PluginManager | None = None) -> list[dict[str, Any]]:
    """One dict per registered plugin: origin, the hooks it implements, what it registered."""
    if pm is None:
        pm = get_plugin_manager()
    registries = registries_for(pm)
    sources: dict[str, PluginSource] = getattr(pm, "sources", {})
    described = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # blocked
            continue
        source = sources.get(name)
        described.append(
            {
                "name": name,
                "distribution": source.distribution if source else None,
                "version": source.version if source else None,
                "builtin": name in builtin_plugins(),
                "hooks": sorted({caller.name for caller in pm.get_hookcallers(plugin) or []}),
                "registered": {
                    kind: registries[kind].by_plugin(name) for kind in REGISTRATION_HOOKS
                },
            }
        )
    return described


def plugin_load_failures(pm: pluggy.PluginManager | None = None) -> list[dict[str, Any]]:
    """The installed plugins left out of ``pm``: entry point, distribution, version, error."""
    if pm is None:
        pm = get_plugin_manager()
    return [failure.to_dict() for failure in getattr(pm, "load_failures", [])]
