"""The entry point: registers the ``dask`` executor. Importing it does not import dask."""

from __future__ import annotations

from typing import Any

from routilux_dask.executor import DaskExecutor
from routilux_kernel import hookimpl


@hookimpl
def register_executors(register: Any) -> None:
    register("dask", DaskExecutor)
