"""SIGINT and SIGTERM during ``routilux run``: recorded and acted on, never raised mid-way.

A ``KeyboardInterrupt`` raised wherever the main thread happens to be can leave the runtime
half shut down (a second Ctrl-C inside the first one's cleanup did, and ``run`` then waited
forever). Here a signal handler only records the signal and writes a byte to a pipe; the run
command waits on that pipe, and decides what a first and a second signal do.
"""

from __future__ import annotations

import os
import select
import signal
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

#: The signals ``routilux run`` turns into a graceful stop (the first) and a forced one.
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class InterruptWatch:
    """While entered (on the main thread), SIGINT and SIGTERM are recorded, not raised.

    :meth:`wait` sleeps until a signal arrives, :meth:`wake` is called, or the timeout
    passes; other threads call :meth:`wake` to say "something you wait for happened".
    On another thread than the main one, signals keep their usual handlers.
    """

    def __init__(self) -> None:
        self.signals: list[int] = []
        self._read_fd = self._write_fd = -1
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> InterruptWatch:
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        if threading.current_thread() is threading.main_thread():
            for signum in HANDLED_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        fds, self._read_fd, self._write_fd = (self._read_fd, self._write_fd), -1, -1
        for fd in fds:
            os.close(fd)

    def _on_signal(self, signum: int, frame: object) -> None:
        # Only what is safe at any point of the main thread: no locks, no exceptions.
        self.signals.append(signum)
        self.wake()

    def wake(self) -> None:
        try:
            os.write(self._write_fd, b"!")
        except OSError:
            pass  # the pipe is full (already awake) or closed (the run is over)

    def wait(self, timeout: float | None) -> None:
        """Sleep until woken or ``timeout`` seconds passed (None: no limit)."""
        if self._read_fd < 0:
            return
        readable, _, _ = select.select([self._read_fd], [], [], timeout)
        if readable:
            try:
                while os.read(self._read_fd, 4096):
                    pass
            except BlockingIOError:
                pass

    def wait_until(self, done: Callable[[], bool], deadline: float | None) -> bool:
        """Wait until ``done()`` is true (True), a new signal came, or ``deadline`` passed."""
        seen = len(self.signals)
        while not done():
            if len(self.signals) > seen:
                return False
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            self.wait(remaining)
        return True


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
