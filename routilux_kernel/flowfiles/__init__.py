"""Flows as plain data (the flow-file format of docs/flow-files.md), in both directions.

``flow_from_dict`` checks everything it can before giving up, so one run reports every
problem of a file; each problem reads ``source: key.path: what was expected``.
"""

from __future__ import annotations

from typing import Any

import pluggy

from routilux_kernel.core.flow import Flow
from routilux_kernel.flowfiles.checks import FlowFileError
from routilux_kernel.flowfiles.reading import (
    REGISTERED_NAME_ATTRIBUTE,
    ROUTINE_KEYS,
    TOP_LEVEL_KEYS,
    FlowReader,
    flow_entry,
    flow_params,
)
from routilux_kernel.flowfiles.writing import flow_to_dict
from routilux_kernel.hooks.registry import Registries


def flow_from_dict(
    data: Any,
    *,
    source: str = "<dict>",
    plugin_manager: pluggy.PluginManager | None = None,
    registries: Registries | None = None,
    registered_only: bool = False,
    default_flow_id: str | None = None,
) -> Flow:
    """Build a Flow from flow-file data; raise FlowFileError listing every problem.

    ``registered_only`` refuses every ``module:Class`` (or ``module:function``) name without
    importing anything, so an untrusted file can only use registered routines.
    """
    if registries is None:
        from routilux_kernel.hooks.installed import get_plugin_manager
        from routilux_kernel.hooks.registry import registries_for

        registries = registries_for(plugin_manager or get_plugin_manager())
    return FlowReader(source, registries, registered_only).build(data, default_flow_id)


__all__ = [
    "REGISTERED_NAME_ATTRIBUTE",
    "ROUTINE_KEYS",
    "TOP_LEVEL_KEYS",
    "FlowFileError",
    "flow_entry",
    "flow_from_dict",
    "flow_params",
    "flow_to_dict",
]
