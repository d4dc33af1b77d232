"""The default executor: a thread pool in this process."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from routilux_kernel.executors import Executor, ExecutorCapabilities
from routilux_kernel.hookspecs import hookimpl


class ThreadExecutor(Executor):
    """Activations run on a thread pool; logic sees the live JobState and emits route at once."""

    name = "thread"
    capabilities = ExecutorCapabilities(in_process=True)

    def __init__(self, max_workers: int | None = None, thread_name_prefix: str = "routilux") -> None:
        if max_workers is None:
            max_workers = min(32, (os.cpu_count() or 1) + 4)
        if not isinstance(max_workers, int) or max_workers < 1:
            raise ValueError(f"thread executor: max_workers must be an int >= 1, got {max_workers!r}")
        self._max_workers = max_workers
        self._prefix = thread_name_prefix
        self._pool: ThreadPoolExecutor | None = None

    def start(self) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._max_workers, thread_name_prefix=self._prefix)

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        pool = self._pool
        if pool is None:
            self.start()
            pool = self._pool
            assert pool is not None
        return pool.submit(fn, *args)

    def shutdown(self, wait: bool = True) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=not wait)

    @property
    def max_workers(self) -> int:
        return self._max_workers


@hookimpl
def register_executors(register: Callable[..., None]) -> None:
    register("thread", ThreadExecutor)
