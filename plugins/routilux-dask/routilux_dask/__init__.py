"""routilux-dask: the ``dask`` executor for routilux_kernel, on a Dask ``distributed`` cluster."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from routilux_dask.executor import DaskExecutor
    from routilux_dask.worker import RoutiluxWorkerPlugin

__all__ = ["DaskExecutor", "RoutiluxWorkerPlugin", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy, so that loading the plugin (on every Runtime) never imports dask.
    if name == "DaskExecutor":
        from routilux_dask.executor import DaskExecutor

        return DaskExecutor
    if name == "RoutiluxWorkerPlugin":
        from routilux_dask.worker import RoutiluxWorkerPlugin

        return RoutiluxWorkerPlugin
    raise AttributeError(f"module 'routilux_dask' has no attribute {name!r}")
