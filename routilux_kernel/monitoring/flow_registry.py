"""The tutorial's import path for :class:`FlowRegistry` (it lives in the engine layer)."""

from routilux_kernel.engine.flow_registry import FlowRegistry

__all__ = ["FlowRegistry"]
