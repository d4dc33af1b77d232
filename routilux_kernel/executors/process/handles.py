"""What the process pool's dispatcher tracks: submitted tasks and the worker processes."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from routilux_kernel.executors.process.forked import ForkedProcess
from routilux_kernel.executors.process.frames import FrameReader, send_message


class Task:
    """One submitted call: its future, its pickled payload, and where it is."""

    __slots__ = (
        "id",
        "future",
        "payload",
        "on_effects",
        "worker",
        "started",
        "sent",
        "stop_reason",
    )

    def __init__(
        self,
        task_id: int,
        future: Future[Any],
        payload: bytes,
        on_effects: Callable[[bytes], bytes] | None = None,
    ) -> None:
        self.id = task_id
        self.future = future
        self.payload = payload
        #: Applies effects the task streams while it runs; returns the pickled reply.
        self.on_effects = on_effects
        self.worker: WorkerHandle | None = None
        self.started = False
        self.sent = False
        #: Why the executor itself killed the worker running this task (force cancel, shutdown).
        self.stop_reason: str | None = None


class WorkerHandle:
    """One worker process, its socket, and the task it holds."""

    def __init__(
        self, name: str, process: subprocess.Popen[bytes] | ForkedProcess, sock: socket.socket
    ) -> None:
        self.name = name
        self.process = process
        self.sock = sock
        self.reader = FrameReader(sock)
        self.closed = False
        self._own_pidfd: int | None = None
        if isinstance(process, subprocess.Popen) and hasattr(os, "pidfd_open"):
            try:
                self._own_pidfd = os.pidfd_open(process.pid)
            except OSError:
                pass  # the pipe's end-of-file still tells us the worker is gone
        self.ready = False
        self.exiting = False
        self.dead = False
        self.task: Task | None = None
        self.start_error = ""
        self._send_lock = threading.Lock()

    def send(self, message: tuple[Any, ...], task: Task | None = None) -> bool:
        with self._send_lock:
            if self.closed:
                return False
            try:
                send_message(self.sock, message)
            except OSError:
                return False
            if task is not None:
                # Under the send lock: _on_exit reads it after close(), which takes this
                # lock, so a task that reached a worker that then died is never requeued.
                task.sent = True
            return True

    @property
    def pidfd(self) -> int | None:
        """A descriptor that becomes readable when the worker ends (None: not known yet, or
        not available; the socket's end-of-file still tells)."""
        if isinstance(self.process, ForkedProcess):
            return self.process.pidfd  # sent by the template once it forked the worker
        return self._own_pidfd

    def close(self) -> None:
        with self._send_lock:  # never close while another thread writes to this fd
            self.closed = True
            self.sock.close()
            if isinstance(self.process, ForkedProcess):
                self.process.close()
            elif self._own_pidfd is not None:
                os.close(self._own_pidfd)
                self._own_pidfd = None
