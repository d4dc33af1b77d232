"""One timer thread per runtime: retries, wake-ups and job timeouts without sleeping workers."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable

from routilux_kernel.core.lazy_logger import logger


class TimerHandle:
    __slots__ = ("deadline", "callback", "cancelled", "_service")

    def __init__(
        self, deadline: float, callback: Callable[[TimerHandle], None], service: TimerService
    ) -> None:
        self.deadline = deadline
        self.callback: Callable[[TimerHandle], None] | None = callback
        self.cancelled = False
        self._service = service

    def cancel(self) -> None:
        """Never run the callback; drops it at once so what it references can be freed."""
        if not self.cancelled:
            self.cancelled = True
            self.callback = None
            self._service._note_cancelled()


class TimerService:
    """Runs callbacks at deadlines on one daemon thread; callbacks must be quick and not block."""

    def __init__(self, name: str = "routilux-timer") -> None:
        self._name = name
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._counter = itertools.count()
        self._cond = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._cancelled = 0  # cancelled handles still in the heap

    def schedule(self, delay: float, callback: Callable[[TimerHandle], None]) -> TimerHandle:
        """Call ``callback(handle)`` after ``delay`` seconds unless the handle is cancelled."""
        handle = TimerHandle(time.monotonic() + max(0.0, delay), callback, self)
        with self._cond:
            if self._stopped:
                raise RuntimeError("timer service is stopped")
            heapq.heappush(self._heap, (handle.deadline, next(self._counter), handle))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            elif self._heap[0][2] is handle:
                self._cond.notify()
        return handle

    def _note_cancelled(self) -> None:
        # Long timeouts of finished jobs would otherwise pile up until their deadlines:
        # rebuild the heap once most of it is dead weight.
        with self._cond:
            self._cancelled += 1
            if self._cancelled > 64 and self._cancelled * 2 > len(self._heap):
                self._heap = [entry for entry in self._heap if not entry[2].cancelled]
                heapq.heapify(self._heap)
                self._cancelled = 0

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._cond.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopped:
                        return
                    while self._heap and self._heap[0][2].cancelled:
                        heapq.heappop(self._heap)
                        self._cancelled = max(0, self._cancelled - 1)
                    if not self._heap:
                        self._cond.wait()
                        continue
                    wait = self._heap[0][0] - time.monotonic()
                    if wait <= 0:
                        handle = heapq.heappop(self._heap)[2]
                        break
                    self._cond.wait(wait)
            callback = handle.callback
            if callback is None:
                continue
            try:
                callback(handle)
            except Exception:
                logger.opt(exception=True).error("timer callback failed")
