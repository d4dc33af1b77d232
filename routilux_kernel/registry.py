"""Name -> object registries filled from the registration hooks of a plugin manager."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pluggy

from routilux_kernel.errors import DuplicateRegistrationError, PluginError


@dataclass
class Registered:
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
            raise LookupError(
                f"unknown {self.kind} {name!r}; installed: {', '.join(sorted(self._entries)) or 'none'}"
            ) from None

    def entry(self, name: str) -> Registered:
        self.get(name)
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def by_plugin(self, plugin: str) -> list[str]:
        return [name for name, entry in self._entries.items() if entry.plugin == plugin]

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
}


class Registries:
    """All registries of one plugin manager."""

    def __init__(self) -> None:
        self.executors = Registry("executor")
        self.routines = Registry("routine")
        self.activation_policies = Registry("activation policy")
        self.error_strategies = Registry("error strategy")
        self.commands = Registry("command")

    def __getitem__(self, kind: str) -> Registry:
        registry: Registry = getattr(self, kind)
        return registry


def collect_registries(
    pm: pluggy.PluginManager, on_error: Callable[[str, BaseException], None] | None = None
) -> Registries:
    """Call every registration hook implementation, each with a ``register`` bound to its plugin.

    Calling implementations one by one is what lets a duplicate name report both plugins.
    ``on_error(plugin_name, exc)`` receives a failing implementation's exception; without it
    the exception propagates.
    """
    registries = Registries()
    for attribute, hook_name in REGISTRATION_HOOKS.items():
        registry = registries[attribute]
        caller = getattr(pm.hook, hook_name)
        # pluggy lists implementations last-registered first; register in load order instead.
        for impl in reversed(caller.get_hookimpls()):
            plugin_name = impl.plugin_name

            def register(name: str, value: Any, _plugin: str = plugin_name, **options: Any) -> None:
                registry.add(name, value, _plugin, **options)

            try:
                impl.function(register=register)
            except DuplicateRegistrationError:
                raise
            except Exception as exc:
                if on_error is None:
                    raise PluginError(
                        f"plugin {plugin_name!r} failed in {hook_name}: {type(exc).__name__}: {exc}"
                    ) from exc
                on_error(plugin_name, exc)
    return registries
