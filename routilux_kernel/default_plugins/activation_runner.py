"""The innermost ``run_activation``: call the routine's logic. Plugins wrap it."""

from __future__ import annotations

from typing import Any

from routilux_kernel.hookspecs import hookimpl


@hookimpl(trylast=True)
def run_activation(activation: Any) -> Any:
    return activation.call_logic()
