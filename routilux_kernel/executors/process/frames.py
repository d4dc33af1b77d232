"""Messages between the pool and its workers, read without ever blocking the dispatcher.

The wire format is that of ``multiprocessing.connection.Connection`` (a 4-byte big-endian
length, or -1 and an 8-byte length, then a pickle), because the worker side uses a plain
``Connection``. The driver side reads it itself: ``Connection.recv`` blocks until a whole
message arrived, so one worker stopped half-way through a large reply (SIGSTOP, a debugger)
would hold the dispatcher, and with it every other worker, for as long as it stays stopped.
:class:`FrameReader` takes whatever bytes are there, keeps a partial message per worker, and
returns at once.
"""

from __future__ import annotations

import pickle
import socket
import struct
from multiprocessing.reduction import ForkingPickler
from typing import Any

#: The most bytes read from one worker per wake-up, so one busy sender cannot starve the rest.
READ_BUDGET = 4 * 1024 * 1024
_LONG_FRAME = b"\xff\xff\xff\xff"  # a length of -1: the real one follows in 8 bytes
_SHORT_LIMIT = 0x7FFFFFFF


def send_message(sock: socket.socket, message: Any) -> None:
    """Send one message as ``Connection.send`` would (blocking until it is all written)."""
    data = ForkingPickler.dumps(message)
    size = len(data)
    header = struct.pack("!i", size) if size <= _SHORT_LIMIT else struct.pack("!iQ", -1, size)
    if size < 16384:
        sock.sendall(header + bytes(data))
    else:  # no copy of a large payload just to glue the header on
        sock.sendall(header)
        sock.sendall(data)


class FrameReader:
    """The partly received message of one worker, completed across reads."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._header = bytearray()
        self._body: bytearray | None = None
        self._filled = 0

    def read(self, budget: int | None = READ_BUDGET) -> tuple[list[Any], bool]:
        """The messages completed by what can be read now, and whether the worker's end is
        closed. Never blocks; ``budget=None`` reads everything there is."""
        messages: list[Any] = []
        while budget is None or budget > 0:
            try:
                received = self._receive(budget)
            except BlockingIOError:
                return messages, False
            except (ConnectionError, OSError):
                return messages, True
            if received == 0:
                return messages, True
            if budget is not None:
                budget -= received
            if self._body is not None and self._filled == len(self._body):
                messages.append(pickle.loads(self._body))
                self._header.clear()
                self._body = None
        return messages, False

    def _receive(self, budget: int | None) -> int:
        """Read the next piece of the header or body; the count read (0: end of stream)."""
        if self._body is None:
            chunk = self._sock.recv(self._header_size() - len(self._header), socket.MSG_DONTWAIT)
            self._header += chunk
            if chunk and len(self._header) == self._header_size():
                self._start_body()
            return len(chunk)
        view = memoryview(self._body)[self._filled :]
        wanted = len(view) if budget is None else min(len(view), budget)
        count = self._sock.recv_into(view, wanted, socket.MSG_DONTWAIT)
        self._filled += count
        return count

    def _header_size(self) -> int:
        return 12 if self._header[:4] == _LONG_FRAME else 4

    def _start_body(self) -> None:
        if len(self._header) == 12:
            (size,) = struct.unpack("!Q", self._header[4:])
        else:
            (size,) = struct.unpack("!i", self._header)
        self._body = bytearray(size)
        self._filled = 0
