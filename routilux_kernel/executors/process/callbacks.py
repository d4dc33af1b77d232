"""The threads that apply finished tasks' outcomes, off the dispatcher thread.

Applying an outcome runs the caller's callbacks, which may block (a full slot), so the
dispatcher hands each one to these threads. A ``ThreadPoolExecutor`` would do, but it makes
a ``Future`` per call that nobody reads (a condition, a lock and a state change each, on
every remote activation); this pool keeps only a queue. Threads start on demand, up to the
limit, and stay until shutdown.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from routilux_kernel.core.lazy_logger import logger


class CallbackThreads:
    """Runs callables on up to ``limit`` threads named ``<prefix>_N``, in arrival order."""

    def __init__(self, limit: int, prefix: str) -> None:
        self._limit = limit
        self._prefix = prefix
        self._calls: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        #: Calls queued and not yet taken, and threads waiting to take one: a new thread
        #: starts (up to the limit) when the calls outnumber the waiting threads, so a call
        #: never waits behind a blocked one while the limit allows another thread.
        self._queued = 0
        self._waiting = 0
        self._closed = False

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> None:
        """Run ``fn(*args)`` on one of the threads; RuntimeError once shut down."""
        with self._lock:
            if self._closed:
                raise RuntimeError("callback threads are shut down")
            self._queued += 1
            self._calls.put((fn, args))
            if self._queued > self._waiting and len(self._threads) < self._limit:
                thread = threading.Thread(
                    target=self._serve, name=f"{self._prefix}_{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()

    def shutdown(self, wait: bool = True) -> None:
        """Let the threads finish what was submitted, then end; ``wait`` joins them."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._calls.put(None)
        if wait:
            for thread in threads:
                if thread is not threading.current_thread():
                    thread.join()

    def _serve(self) -> None:
        while True:
            with self._lock:
                self._waiting += 1
            call = self._calls.get()
            with self._lock:
                self._waiting -= 1
                if call is not None:
                    self._queued -= 1
            if call is None:
                return
            fn, args = call
            try:
                fn(*args)
            except BaseException:  # noqa: BLE001 - one failed callback must not end the thread
                logger.opt(exception=True).error("process executor: a completion callback failed")
