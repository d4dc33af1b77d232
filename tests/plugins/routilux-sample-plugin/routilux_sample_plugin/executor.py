"""The executor this plugin contributes, selected by name as ``sample.threads``."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from routilux_kernel import Executor, ExecutorCapabilities


class SampleThreadExecutor(Executor):
    """A thread pool whose threads are named ``sample-worker_N``, so tests can see it ran."""

    name = "sample.threads"
    capabilities = ExecutorCapabilities(in_process=True)

    def __init__(self, max_workers: int = 2) -> None:
        if not isinstance(max_workers, int) or max_workers < 1:
            raise ValueError(
                f"sample.threads: max_workers must be an int >= 1, got {max_workers!r}"
            )
        self._max_workers = max_workers
        self._pool: ThreadPoolExecutor | None = None

    def start(self) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._max_workers, thread_name_prefix="sample-worker")

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        if self._pool is None:
            self.start()
        assert self._pool is not None
        return self._pool.submit(fn, *args)

    def shutdown(self, wait: bool = True) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=not wait)

    @property
    def max_workers(self) -> int:
        return self._max_workers
