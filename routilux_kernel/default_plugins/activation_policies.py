"""Registers the built-in activation policies by name (for flow files and plugins)."""

from __future__ import annotations

from collections.abc import Callable

from routilux_kernel import activation_policies as policies
from routilux_kernel.hookspecs import hookimpl


@hookimpl
def register_activation_policies(register: Callable[..., None]) -> None:
    register("immediate", policies.immediate)
    register("all_slots_ready", policies.all_slots_ready)
    register("batch_size", policies.batch_size)
    register("time_interval", policies.time_interval)
    register("custom", policies.custom)
