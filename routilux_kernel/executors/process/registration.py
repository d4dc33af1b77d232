"""Registers the ``process`` executor without importing it: the pool loads on first use.

The pool pulls in multiprocessing and the remote protocol (pickling), which a program on
threads, or ``routilux --help``, never needs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from routilux_kernel.executors.contract import Executor
from routilux_kernel.hooks.specs import hookimpl


def process_executor(**options: Any) -> Executor:
    """Make a :class:`~routilux_kernel.executors.process.pool.ProcessExecutor`."""
    from routilux_kernel.executors.process.pool import ProcessExecutor

    return ProcessExecutor(**options)


@hookimpl
def register_executors(register: Callable[..., None]) -> None:
    register("process", process_executor)
