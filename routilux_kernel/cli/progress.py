"""A one-line progress display for ``routilux run``: shown on a terminal, silent when piped."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO, cast

_CLEAR_LINE = "\r\x1b[K"


def is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class ProgressDisplay:
    """Rewrites a single status line on ``stream`` (jobs done/failed/total, elapsed time).

    Disabled, and writing nothing at all, when ``stream`` is not a TTY.
    """

    def __init__(
        self,
        stream: TextIO,
        total: int,
        label: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        enabled: bool | None = None,
    ) -> None:
        self.stream = stream
        self.total = total
        self.label = label
        self.enabled = is_terminal(stream) if enabled is None else enabled
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self._shown = False

    def line(self, done: int, failed: int) -> str:
        """The status text for ``done`` finished jobs of which ``failed`` did not complete."""
        elapsed = self._clock() - self._started
        return (
            f"{self.label}: {done}/{self.total} jobs done, {failed} failed, "
            f"{self.total - done} running, {elapsed:.1f}s"
        )

    def update(self, done: int, failed: int) -> None:
        if not self.enabled:
            return
        with self._lock:
            self.stream.write(_CLEAR_LINE + self.line(done, failed))
            self.stream.flush()
            self._shown = True

    def clear(self) -> None:
        """Remove the status line so other output starts on a clean line."""
        with self._lock:
            self._clear_locked()

    def write_clear_of_status(self, target: TextIO, text: str) -> int:
        """Write ``text`` to ``target`` with the status line out of its way.

        One lock around both, so an update cannot slip in between the clearing and the text.
        """
        with self._lock:
            self._clear_locked()
            return target.write(text)

    def _clear_locked(self) -> None:
        if self._shown:
            self.stream.write(_CLEAR_LINE)
            self.stream.flush()
            self._shown = False

    def finish(self, done: int, failed: int) -> None:
        """Leave the final status on its own line."""
        if not self.enabled:
            return
        with self._lock:
            self.stream.write(_CLEAR_LINE + self.line(done, failed) + "\n")
            self.stream.flush()
            self._shown = False

    @contextmanager
    def kept_clear_of(self, other: TextIO) -> Iterator[TextIO]:
        """A stand-in for ``other`` that clears the status line before each write.

        Routine logic that prints to a stdout on the same terminal then gets whole lines;
        the next update draws the status again below them.
        """
        if not self.enabled or not is_terminal(other):
            yield other
            return
        yield cast(TextIO, _ClearingStream(other, self))


class _ClearingStream:
    def __init__(self, target: TextIO, display: ProgressDisplay) -> None:
        self._target = target
        self._display = display

    def write(self, text: str) -> int:
        return self._display.write_clear_of_status(self._target, text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)
