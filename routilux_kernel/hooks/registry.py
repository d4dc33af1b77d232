"""Name -> object registries filled from the registration hooks of a plugin manager."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pluggy

from routilux_kernel.core.errors import DuplicateRegistrationError, PluginError
from routilux_kernel.core.routine import Routine


@dataclass
class Registered:
    """One registered object and the plugin that registered it."""

    name: str
    value: Any
    plugin: str
    options: dict[str, Any] = field(default_factory=dict)


class Registry:
    """One kind of registered thing (executors, routines, ...), with who registered each."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Registered] = {}

    def add(self, name: str, value: Any, plugin: str, **options: Any) -> None:
        """Record ``value`` under ``name``; a name already taken raises naming both plugins."""
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin {plugin!r} registered a {self.kind} with name {name!r}")
        existing = self._entries.get(name)
        if existing is not None:
            raise DuplicateRegistrationError(
                f"{self.kind} {name!r} is registered twice: by plugin {existing.plugin!r} "
                f"and by plugin {plugin!r}"
            )
        self._entries[name] = Registered(name, value, plugin, options)

    def get(self, name: str) -> Any:
        """The registered object; unknown names raise LookupError listing the known ones."""
        try:
            return self._entries[name].value
        except KeyError:
            installed = ", ".join(sorted(self._entries)) or "none"
            raise LookupError(f"unknown {self.kind} {name!r}; installed: {installed}") from None

    def entry(self, name: str) -> Registered:
        """The registered object with the name of the plugin that registered it."""
        self.get(name)
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def by_plugin(self, plugin: str) -> list[str]:
        """The names ``plugin`` registered here, sorted."""
        return sorted(name for name, entry in self._entries.items() if entry.plugin == plugin)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Registered]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)


#: registry attribute -> the registration hook that fills it
REGISTRATION_HOOKS = {
    "executors": "register_executors",
    "routines": "register_routines",
    "activation_policies": "register_activation_policies",
    "error_strategies": "register_error_strategies",
    "commands": "register_commands",
    "job_stores": "register_job_stores",
}


class Registries:
    """All registries of one plugin manager."""

    def __init__(self) -> None:
        self.executors = Registry("executor")
        self.routines = Registry("routine")
        self.activation_policies = Registry("activation policy")
        self.error_strategies = Registry("error strategy")
        self.commands = Registry("command")
        self.job_stores = Registry("job store")

    def __getitem__(self, kind: str) -> Registry:
        registry: Registry = getattr(self, kind)
        return registry

    def create_routine(self, name: str, config: dict[str, Any] | None = None) -> Routine:
        """A new instance of the routine registered as ``name``, with ``config`` set."""
        entry = self.routines.entry(name)
        routine = entry.value()
        if not isinstance(routine, Routine):
            raise PluginError(
                f"routine {name!r} registered by plugin {entry.plugin!r} built a "
                f"{type(routine).__name__}, not a Routine subclass"
            )
        if config:
            routine.set_config(**config)
        return routine

    def create_activation_policy(self, name: str, options: dict[str, Any] | None = None) -> Any:
        """The activation policy registered as ``name``, made with ``options``."""
        entry = self.activation_policies.entry(name)
        try:
            return entry.value(**(options or {}))
        except TypeError as exc:
            raise PluginError(
                f"activation policy {name!r} (plugin {entry.plugin!r}) rejected options "
                f"{options or {}}: {exc}"
            ) from exc


def collect_registries(
    pm: pluggy.PluginManager, on_error: Callable[[str, PluginError], None] | None = None
) -> Registries:
    """Call every registration hook implementation, each with a ``register`` bound to its plugin.

    Calling implementations one by one is what lets a duplicate name report both plugins.
    Without ``on_error`` the first failure raises: a :class:`DuplicateRegistrationError`, or a
    :class:`PluginError` naming the plugin and the hook. With it, ``on_error(plugin_name,
    error)`` receives that error and collection goes on (what the plugin registered before
    failing stays; the caller decides whether to drop the plugin and collect again).
    """
    registries = Registries()
    # Load order, not pluggy's call order (tryfirst/trylast), decides who came first.
    order = {name: index for index, (name, _) in enumerate(pm.list_name_plugin())}
    for attribute, hook_name in REGISTRATION_HOOKS.items():
        registry = registries[attribute]
        caller = getattr(pm.hook, hook_name)
        impls = sorted(caller.get_hookimpls(), key=lambda impl: order.get(impl.plugin_name, -1))
        for impl in impls:
            plugin_name = impl.plugin_name
            try:
                impl.function(register=_register_callback(registry, plugin_name))
            except DuplicateRegistrationError as exc:
                if on_error is None:
                    raise
                on_error(plugin_name, exc)
            except Exception as exc:
                error = PluginError(
                    f"plugin {plugin_name!r} failed in {hook_name}: {type(exc).__name__}: {exc}"
                )
                error.__cause__ = exc
                if on_error is None:
                    raise error from exc
                on_error(plugin_name, error)
    return registries


def _register_callback(registry: Registry, plugin_name: str) -> Callable[..., None]:
    """The ``register`` one plugin's registration hook receives: it records who registered."""

    def register(name: str, value: Any, /, **options: Any) -> None:
        registry.add(name, value, plugin_name, **options)

    return register


def registries_for(pm: pluggy.PluginManager) -> Registries:
    """The registries of ``pm``, collected again only when its plugins changed."""
    cached = getattr(pm, "_routilux_registries", None)
    if cached is not None and _same_plugins(cached[0], pm.list_name_plugin()):
        registries: Registries = cached[1]
        return registries
    return cache_registries(pm, collect_registries(pm))


def cache_registries(pm: pluggy.PluginManager, registries: Registries) -> Registries:
    # The cache holds the plugin objects themselves, so an id can never be reused under it.
    pm._routilux_registries = (pm.list_name_plugin(), registries)  # type: ignore[attr-defined]
    return registries


def _same_plugins(before: list[tuple[str, Any]], now: list[tuple[str, Any]]) -> bool:
    return len(before) == len(now) and all(
        name == other_name and plugin is other
        for (name, plugin), (other_name, other) in zip(before, now, strict=True)
    )
