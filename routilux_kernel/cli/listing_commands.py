"""``routilux routines`` and ``routilux plugins``: what the installed plugins provide."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from routilux_kernel.cli.flow_arguments import EXIT_JOB_FAILED, EXIT_OK
from routilux_kernel.core.routine import Routine
from routilux_kernel.hooks.registry import Registered, registries_for

# -- routines ----------------------------------------------------------------------------


def run_routines(args: argparse.Namespace) -> int:
    routines = [describe_routine(entry) for entry in registries_for(args.plugin_manager).routines]
    if args.json:
        print(json.dumps(routines, indent=2, default=repr))
        return EXIT_OK
    if not routines:
        print(
            "No routines are registered. Routines come from plugins (the register_routines "
            "hook); a flow file can also name a class as module:Class."
        )
        return EXIT_OK
    for info in routines:
        print(f"{info['name']}  ({info['class']}, plugin {info['plugin']})")
        if info["error"]:
            print(f"    cannot be created: {info['error']}")
            continue
        if info["description"]:
            print(f"    {info['description']}")
        print(f"    slots:  {', '.join(s['name'] for s in info['slots']) or 'none'}")
        events = [
            f"{e['name']}({', '.join([*e['params'], *(f'{k}?' for k in e.get('optional', ()))])})"
            for e in info["events"]
        ]
        print(f"    events: {', '.join(events) or 'none'}")
        schema = info.get("config_schema") or {}
        if schema:
            print("    config:")
            for key, spec in schema.items():
                kinds = spec.get("type", "any")
                kinds = " | ".join(kinds) if isinstance(kinds, list) else kinds
                extra = " (required)" if spec.get("required") else f" = {spec.get('default')!r}"
                print(f"      {key}: {kinds}{extra}  {spec.get('description', '')}".rstrip())
        else:
            config = [f"{key}={value!r}" for key, value in info["config"].items()]
            print(f"    config: {', '.join(config) or 'none'}")
        if info.get("allows_concurrency") is False:
            print("    concurrency: 1 only (keeps per-job state)")
    return EXIT_OK


def describe_routine(entry: Registered) -> dict[str, Any]:
    """Name, plugin, class, slots, events and config keys of a registered routine.

    The only way to know a routine's slots is to create one; one that fails to be created
    is reported in ``error`` instead of stopping the listing.
    """
    factory = entry.value
    qualname = getattr(factory, "__qualname__", type(factory).__qualname__)
    info: dict[str, Any] = {
        "name": entry.name,
        "plugin": entry.plugin,
        "class": f"{getattr(factory, '__module__', '?')}:{qualname}",
        "description": "",
        "slots": [],
        "events": [],
        "config": {},
        "config_schema": {},
        "error": None,
    }
    try:
        routine = factory()
    except Exception as exc:
        info["error"] = f"{type(exc).__name__}: {exc}"
        return info
    if not isinstance(routine, Routine):
        info["error"] = f"it made a {type(routine).__name__}, not a Routine"
        return info
    info.update(routine.describe())
    return info


# -- plugins -----------------------------------------------------------------------------


def run_plugins(args: argparse.Namespace) -> int:
    try:
        from routilux_kernel.hooks.installed import describe_plugins, plugin_load_failures
    except ImportError:
        print(
            "routilux plugins: this version of routilux_kernel.hooks.manager has no "
            "describe_plugins/plugin_load_failures",
            file=sys.stderr,
        )
        return EXIT_JOB_FAILED
    pm = args.plugin_manager
    plugins = describe_plugins(pm)
    failures = plugin_load_failures(pm)
    if args.json:
        print(json.dumps({"plugins": plugins, "failures": failures}, indent=2, default=repr))
        return EXIT_OK
    for plugin in plugins:
        origin = "built in" if plugin.get("builtin") else _distribution(plugin)
        print(f"{plugin.get('name')}  ({origin})")
        print(f"    hooks: {', '.join(plugin.get('hooks') or []) or 'none'}")
        registered = {
            kind: names for kind, names in (plugin.get("registered") or {}).items() if names
        }
        for kind, names in registered.items():
            print(f"    {kind.replace('_', ' ')}: {', '.join(names)}")
    if failures:
        print(f"{len(failures)} plugin{'s' if len(failures) != 1 else ''} failed to load:")
        for failure in failures:
            origin = _distribution(failure)
            print(f"    {failure.get('entry_point')} ({origin}): {failure.get('error')}")
    return EXIT_OK


def _distribution(info: dict[str, Any]) -> str:
    name = info.get("distribution")
    if not name:
        return "no distribution"
    version = info.get("version")
    return f"{name} {version}" if version else str(name)
