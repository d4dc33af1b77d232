"""What the dispatcher thread waits on, kept registered from one wait to the next.

``multiprocessing.connection.wait`` builds a selector, registers every descriptor and closes
it again on each call: the dispatcher waits once or twice per activation, so that set-up was
a measurable share of a trivial remote activation. :class:`ReadinessWatch` keeps one
``poll`` object and only registers what changed since the previous wait (a worker started,
its pidfd arrived, a worker ended).
"""

from __future__ import annotations

import math
import select
from collections.abc import Hashable, Mapping
from typing import Any


class ReadinessWatch:
    """Waits until any of a changing set of sockets and descriptors can be read."""

    def __init__(self) -> None:
        self._poll = select.poll()
        #: descriptor number -> the object it was registered for
        self._registered: dict[int, Any] = {}

    def wait(
        self, watched: Mapping[Hashable, Any], timeout: float | None, changed: bool = True
    ) -> list[Any]:
        """The objects of ``watched`` (sockets, or ints such as pidfds, or anything with a
        ``fileno()``) that are readable, have hung up or failed; empty when ``timeout``
        seconds passed first (None: no time limit). ``changed=False``: ``watched`` holds
        the same objects as at the previous call, which skips comparing them."""
        if changed:
            wanted = {_descriptor(obj): obj for obj in watched}
            wanted.pop(-1, None)  # a socket closed meanwhile: its owner is being removed
            for fd in self._registered.keys() - wanted.keys():
                self._poll.unregister(fd)
            for fd in wanted.keys() - self._registered.keys():
                self._poll.register(fd, select.POLLIN)
            self._registered = wanted
        registered = self._registered
        milliseconds = None if timeout is None else math.ceil(timeout * 1000)
        events = self._poll.poll(milliseconds)
        # Any event counts: a hang-up or an error is read (and seen as the end) by its owner.
        return [registered[fd] for fd, _ in events if fd in registered]


def _descriptor(obj: Any) -> int:
    return obj if isinstance(obj, int) else int(obj.fileno())
