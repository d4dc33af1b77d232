"""The hook contract: names, arguments, options and one-line docstrings of every hookspec."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from routilux_kernel.hooks import specs as hookspecs
from routilux_kernel.hooks.calls import HookSet
from routilux_kernel.hooks.manager import create_plugin_manager
from routilux_kernel.hooks.registry import REGISTRATION_HOOKS

SPECS: dict[str, Callable[..., Any]] = {
    name: function
    for name, function in vars(hookspecs).items()
    if hasattr(function, f"{hookspecs.PROJECT_NAME}_spec")
}

# The published contract (ARCHITECTURE.md §6): renaming a hook or an argument breaks
# every installed plugin, so changing this table must be a deliberate decision.
CONTRACT = {
    "register_executors": ("register",),
    "register_routines": ("register",),
    "register_activation_policies": ("register",),
    "register_error_strategies": ("register",),
    "register_commands": ("register",),
    "register_job_stores": ("register",),
    "job_started": ("job_state", "flow", "entry_params"),
    "job_finished": ("job_state", "flow"),
    "routine_started": ("job_state", "routine_id", "activation"),
    "routine_finished": ("job_state", "routine_id", "error", "activation"),
    "event_emitted": ("job_state", "routine_id", "event", "data"),
    "decide_error": ("failure",),
    "run_activation": ("activation",),
    "remote_activation_context": ("activation",),
    "worker_setup": ("worker",),
    "extend_command": ("command", "parser"),
    "run_started": ("args", "runtime", "flow"),
    "run_finished": ("args", "runtime", "flow", "job_states"),
}


def test_hook_names_and_arguments_are_the_contract() -> None:
    assert {name: tuple(inspect.signature(f).parameters) for name, f in SPECS.items()} == CONTRACT


@pytest.mark.parametrize("name", sorted(SPECS))
def test_hookspec_is_typed_and_has_a_one_line_docstring(name: str) -> None:
    function = SPECS[name]
    doc = inspect.getdoc(function)
    assert doc and "\n" not in doc and doc.endswith("."), f"{name}: one-line docstring"
    signature = inspect.signature(function)
    assert signature.return_annotation is not inspect.Signature.empty, f"{name}: return type"
    for parameter in signature.parameters.values():
        assert parameter.annotation is not inspect.Parameter.empty, f"{name}({parameter.name})"


def test_only_decisions_are_firstresult() -> None:
    pm = create_plugin_manager(load_entry_points=False)
    first = {name for name in SPECS if getattr(pm.hook, name).spec.opts["firstresult"]}
    assert first == {"decide_error", "run_activation"}


def test_registration_hooks_fill_one_registry_each() -> None:
    registration = {name for name in SPECS if name.startswith("register_")}
    assert set(REGISTRATION_HOOKS.values()) == registration


def test_lifecycle_hooks_resolved_by_the_runtime_exist() -> None:
    hooks = HookSet(create_plugin_manager(load_entry_points=False))
    resolved = {name for name in SPECS if hasattr(hooks, name)}
    assert resolved >= {
        "job_started",
        "job_finished",
        "routine_started",
        "routine_finished",
        "event_emitted",
        "run_activation",
        "decide_error",
    }


def test_hookimpl_marker_is_exported_for_plugin_authors() -> None:
    import routilux_kernel

    assert routilux_kernel.hookimpl is hookspecs.hookimpl
    assert hookspecs.PROJECT_NAME == "routilux"
