"""The tutorial's import path for :class:`Runtime` (it lives in the engine layer)."""

from routilux_kernel.engine.runtime import Runtime

__all__ = ["Runtime"]
