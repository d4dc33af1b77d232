"""Registries filled from registration hooks: names, owners, duplicates, failing hooks."""

from __future__ import annotations

from typing import Any

import pytest

from routilux_kernel import hookimpl
from routilux_kernel.core.errors import DuplicateRegistrationError, PluginError
from routilux_kernel.hooks.manager import create_plugin_manager
from routilux_kernel.hooks.registry import Registry, collect_registries


def test_registry_lookup_and_owners() -> None:
    registry = Registry("widget")
    registry.add("b", 2, "plugin-one")
    registry.add("a", 1, "plugin-two", colour="red")
    registry.add("c", 3, "plugin-one")
    assert registry.get("a") == 1 and "a" in registry and "z" not in registry
    assert registry.names() == ["a", "b", "c"] and len(registry) == 3
    assert registry.by_plugin("plugin-one") == ["b", "c"]
    entry = registry.entry("a")
    assert (entry.plugin, entry.options) == ("plugin-two", {"colour": "red"})
    with pytest.raises(LookupError) as raised:
        registry.get("z")
    assert str(raised.value) == "unknown widget 'z'; installed: a, b, c"


def test_registry_rejects_a_taken_name_naming_both_plugins() -> None:
    registry = Registry("widget")
    registry.add("gear", 1, "first-plugin")
    with pytest.raises(DuplicateRegistrationError) as raised:
        registry.add("gear", 2, "second-plugin")
    assert str(raised.value) == (
        "widget 'gear' is registered twice: by plugin 'first-plugin' and by plugin 'second-plugin'"
    )
    assert registry.get("gear") == 1


@pytest.mark.parametrize("name", ["", None, 3])
def test_registry_rejects_names_that_are_not_strings(name: Any) -> None:
    with pytest.raises(PluginError, match=f"plugin 'p' registered a widget with name {name!r}"):
        Registry("widget").add(name, object(), "p")


class Early:
    """Registers first in load order but asks pluggy to be called last."""

    @hookimpl(trylast=True)
    def register_executors(self, register: Any) -> None:
        register("shared-name", "early")


class Late:
    @hookimpl(tryfirst=True)
    def register_executors(self, register: Any) -> None:
        register("shared-name", "late")


def test_load_order_decides_who_came_first() -> None:
    pm = create_plugin_manager(load_entry_points=False)
    pm.register(Early(), name="early")
    pm.register(Late(), name="late")
    with pytest.raises(DuplicateRegistrationError, match="by plugin 'early' and by plugin 'late'"):
        collect_registries(pm)
    reported: list[tuple[str, str]] = []
    registries = collect_registries(pm, lambda name, error: reported.append((name, str(error))))
    assert registries.executors.get("shared-name") == "early"
    assert [name for name, _ in reported] == ["late"]


class Failing:
    @hookimpl
    def register_routines(self, register: Any) -> None:
        register("failing.first", object)
        raise KeyError("config")

    @hookimpl
    def register_commands(self, register: Any) -> None:
        register("failing-command", print, help="still collected")


def test_failing_registration_hook_raises_naming_plugin_and_hook() -> None:
    pm = create_plugin_manager(load_entry_points=False)
    pm.register(Failing(), name="failing")
    with pytest.raises(PluginError) as raised:
        collect_registries(pm)
    assert str(raised.value) == "plugin 'failing' failed in register_routines: KeyError: 'config'"
    assert isinstance(raised.value.__cause__, KeyError)


def test_on_error_reports_and_collection_goes_on() -> None:
    pm = create_plugin_manager(load_entry_points=False)
    pm.register(Failing(), name="failing")
    reported: list[tuple[str, PluginError]] = []
    registries = collect_registries(pm, lambda name, error: reported.append((name, error)))
    assert [(name, type(error.__cause__)) for name, error in reported] == [("failing", KeyError)]
    # what the plugin registered before raising stays: the caller decides to drop it or not
    assert "failing.first" in registries.routines
    assert registries.commands.entry("failing-command").options == {"help": "still collected"}
    assert "thread" in registries.executors  # every other plugin is collected
