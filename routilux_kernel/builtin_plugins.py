"""The composition root: the built-in plugins and the flow-file format, handed to the layers.

It stands above every layer, so the plugin system never names a built-in and the Flow
contract never imports the flow-file code. ``routilux_kernel/__init__`` imports it first.
"""

from __future__ import annotations

from typing import Any

from routilux_kernel.core.flow import Flow, set_flow_dict_format
from routilux_kernel.hooks.manager import set_builtin_plugins

#: Registered, in this order, into every plugin manager before anything installed.
BUILTIN_PLUGINS = (
    "routilux_kernel.executors.thread",
    "routilux_kernel.executors.process.registration",
    "routilux_kernel.core.policies",
    "routilux_kernel.core.error_handling",
    "routilux_kernel.core.context",
    "routilux_kernel.cli.builtin_commands",
    "routilux_kernel.stores.memory_store",
    "routilux_kernel.stores.sqlite_registration",
)


class _FlowFileFormat:
    """``Flow.to_dict``/``from_dict`` through the flow-file layer, imported when first used."""

    def to_dict(self, flow: Flow) -> dict[str, Any]:
        from routilux_kernel.flowfiles import flow_to_dict

        return flow_to_dict(flow)

    def from_dict(self, data: dict[str, Any], **options: Any) -> Flow:
        from routilux_kernel.flowfiles import flow_from_dict

        return flow_from_dict(data, **options)


set_builtin_plugins(BUILTIN_PLUGINS)
set_flow_dict_format(_FlowFileFormat())
