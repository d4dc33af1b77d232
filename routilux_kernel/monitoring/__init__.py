"""Flow registry (the tutorial's ``routilux.monitoring.flow_registry``)."""

from routilux_kernel.monitoring.flow_registry import FlowRegistry

__all__ = ["FlowRegistry"]
