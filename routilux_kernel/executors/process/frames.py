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
from typing import Any

#: The most bytes read from one worker per wake-up, so one busy sender cannot starve the rest.
READ_BUDGET = 4 * 1024 * 1024
#: The most bytes one ``recv`` asks for.
CHUNK = 64 * 1024
_LONG_FRAME = b"\xff\xff\xff\xff"  # a length of -1: the real one follows in 8 bytes
_SHORT_LIMIT = 0x7FFFFFFF


def send_message(sock: socket.socket, message: Any) -> None:
    """Send one message as ``Connection.send`` would (blocking until it is all written).

    The pool's messages hold only str, int, bytes and tuples of them: the plain pickler
    writes them as ``ForkingPickler`` would, without the copy of the copyreg dispatch table
    that ``ForkingPickler`` makes for every message."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    size = len(data)
    header = struct.pack("!i", size) if size <= _SHORT_LIMIT else struct.pack("!iQ", -1, size)
    if size < 16384:
        sock.sendall(header + data)
    else:  # no copy of a large payload just to glue the header on
        sock.sendall(header)
        sock.sendall(data)


class FrameReader:
    """The partly received messages of one worker, completed across reads.

    Small messages (most replies) arrive whole with their header in one ``recv`` of up to
    :data:`CHUNK` bytes; a message larger than what is buffered gets its own buffer, which
    later reads fill in place.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        #: Received bytes not yet part of a returned message: headers, small bodies.
        self._buffered = bytearray()
        #: The body of a large message being filled in place, and how much of it is.
        self._body: bytearray | None = None
        self._filled = 0
        #: The last read got less than it asked for: nothing more is there for now.
        self._drained = False

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
            self._complete(messages)
            if budget is not None and self._drained:
                # The socket gave less than asked: drained for now. The (level-triggered)
                # wait reports any later bytes or the end; asking again would meet EAGAIN.
                return messages, False
        return messages, False

    def _receive(self, budget: int | None) -> int:
        """Read what is there into the large body or the buffer; the count (0: end of stream)."""
        wanted = CHUNK if budget is None else min(CHUNK, budget)
        if self._body is not None:
            view = memoryview(self._body)[self._filled :]
            asked = min(len(view), wanted)
            count = self._sock.recv_into(view, asked, socket.MSG_DONTWAIT)
            self._filled += count
        else:
            chunk = self._sock.recv(wanted, socket.MSG_DONTWAIT)
            self._buffered += chunk
            asked, count = wanted, len(chunk)
        self._drained = count < asked
        return count

    def _complete(self, messages: list[Any]) -> None:
        """Unpickle every message now complete; start a large body's own buffer."""
        if self._body is not None:
            if self._filled < len(self._body):
                return
            messages.append(pickle.loads(self._body))
            self._body = None
        buffered = self._buffered
        start = 0
        while True:
            header = _header_size(buffered, start)
            if len(buffered) - start < header:
                break
            size = _body_size(buffered, start, header)
            body_start = start + header
            if len(buffered) - body_start >= size:
                messages.append(pickle.loads(memoryview(buffered)[body_start : body_start + size]))
                start = body_start + size
                continue
            # A message larger than what arrived so far: it gets a buffer of its own size.
            self._body = bytearray(size)
            self._filled = len(buffered) - body_start
            self._body[: self._filled] = memoryview(buffered)[body_start:]
            start = len(buffered)
            break
        del buffered[:start]


def _header_size(buffered: bytearray, start: int) -> int:
    return 12 if buffered[start : start + 4] == _LONG_FRAME else 4


def _body_size(buffered: bytearray, start: int, header: int) -> int:
    if header == 12:
        return int(struct.unpack_from("!Q", buffered, start + 4)[0])
    return int(struct.unpack_from("!i", buffered, start)[0])
