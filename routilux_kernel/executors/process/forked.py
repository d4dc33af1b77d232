"""The driver side of the template process: ask it for workers, learn their pids and exit codes.

:class:`WorkerTemplate` starts the template (``template.py``) and keeps a reader thread on
its control socket. :meth:`WorkerTemplate.fork` sends the worker's end of a socket pair
and returns at once with a :class:`ForkedProcess`; the template forks when it has finished
its imports, so a pool may ask for workers while the template is still starting.

A :class:`ForkedProcess` stands in for the ``subprocess.Popen`` of a worker started the
slow way: ``pid``, ``poll``, ``wait`` and ``kill``. Its ``pidfd`` (sent by the template,
which opened it before it could reap the child) lets the dispatcher see the worker end and
lets ``kill`` signal exactly that process even after its pid was reused.
"""

from __future__ import annotations

import itertools
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence

from routilux_kernel.core.lazy_logger import logger
from routilux_kernel.executors.process.template import PACKET_LIMIT
from routilux_kernel.executors.remote import worker_entry_points

_BOOT = "from routilux_kernel.executors.process.template import template_main; template_main()"


def forking_supported() -> bool:
    """Whether this platform has what the template needs (Linux: pidfds and SCM_RIGHTS)."""
    return (
        hasattr(os, "fork")
        and hasattr(os, "pidfd_open")
        and hasattr(signal, "pidfd_send_signal")
        and hasattr(socket, "send_fds")
        and hasattr(socket, "SOCK_SEQPACKET")
    )


class ForkedProcess:
    """A worker forked by the template, seen through the parts of ``Popen`` the pool uses."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pid: int | None = None
        self.pidfd: int | None = None
        self.returncode: int | None = None
        self._ended = False  # its exit was reported, or nobody is left to report it
        self._kill_wanted = False
        self._closed = False
        self._changed = threading.Condition()

    def attach(self, pid: int, pidfd: int) -> None:
        """The template forked it (called by the template's reader thread)."""
        with self._changed:
            if self._closed:  # the pool is done with this worker already
                os.close(pidfd)
                return
            self.pid, self.pidfd = pid, pidfd
            kill = self._kill_wanted
            self._changed.notify_all()
        if kill:
            self.kill()

    def ended(self, exitcode: int | None) -> None:
        """It was reaped with ``exitcode`` (None: the template died and cannot tell)."""
        with self._changed:
            if not self._ended:
                self.returncode, self._ended = exitcode, True
                self._changed.notify_all()

    def poll(self) -> int | None:
        with self._changed:
            return self.returncode if self._ended else None

    def wait(self, timeout: float | None = None) -> int | None:
        with self._changed:
            if not self._changed.wait_for(lambda: self._ended, timeout):
                raise subprocess.TimeoutExpired(f"process worker {self.name}", timeout or 0.0)
            return self.returncode

    def kill(self) -> None:
        with self._changed:
            if self._ended:
                return
            if self.pidfd is None:  # not forked yet: killed as soon as it is
                self._kill_wanted = True
                return
            try:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            except OSError:
                pass  # it has ended already; the template reports its exit

    def close(self) -> None:
        with self._changed:
            self._closed = True
            pidfd, self.pidfd = self.pidfd, None
        if pidfd is not None:
            os.close(pidfd)


class WorkerTemplate:
    """One template process and the workers it forked for one pool."""

    def __init__(self, plugins: Sequence[str], wake: Callable[[], None]) -> None:
        self._wake = wake
        self._lock = threading.Lock()
        self._requests = itertools.count(1)
        self._forking: dict[int, ForkedProcess] = {}
        self._running: dict[int, ForkedProcess] = {}
        #: Why no more workers can be forked (None while the template works).
        self.failure: str | None = None
        driver_end, template_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _BOOT, str(template_end.fileno())],
                pass_fds=(template_end.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        except BaseException:
            driver_end.close()
            raise
        finally:
            template_end.close()
        self._control = driver_end
        driver_end.send(
            pickle.dumps(("init", list(sys.path), tuple(plugins), worker_entry_points()))
        )
        self._reader = threading.Thread(
            target=self._read, name="routilux-process-template", daemon=True
        )
        self._reader.start()

    def fork(self, name: str, worker_end: socket.socket) -> ForkedProcess:
        """Ask for a worker on ``worker_end`` (the caller closes its copy); OSError if the
        template cannot take the request."""
        process = ForkedProcess(name)
        with self._lock:
            if self.failure is not None:
                raise OSError(self.failure)
            request = next(self._requests)
            self._forking[request] = process
            try:
                message = pickle.dumps(("fork", request, os.getcwd()))
                socket.send_fds(self._control, [message], [worker_end.fileno()])
            except OSError:
                del self._forking[request]
                raise
        return process

    def _read(self) -> None:
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self._control, PACKET_LIMIT, 1)
            except OSError:
                data, fds = b"", []
            if not data:
                self._lost("the template process ended")
                return
            message = pickle.loads(data)
            kind = message[0]
            if kind == "forked":
                with self._lock:
                    process = self._forking.pop(message[1])
                    self._running[message[2]] = process
                process.attach(message[2], fds[0])
                self._wake()  # the dispatcher watches the new pidfd from now on
            elif kind == "exited":
                with self._lock:
                    process = self._running.pop(message[1])
                process.ended(message[2])
            elif kind == "unforkable":
                logger.warning(
                    "process executor: workers are started as fresh interpreters, since the "
                    "template process cannot fork safely: {}",
                    message[1],
                )
                self._lost(message[1])
                return

    def _lost(self, reason: str) -> None:
        """No more exits will be reported: release everyone waiting for one."""
        with self._lock:
            if self.failure is None:
                self.failure = reason
            waiting = [*self._forking.values(), *self._running.values()]
            self._forking.clear()
            self._running.clear()
        for process in waiting:
            process.ended(None)

    def close(self) -> None:
        """Stop the template (its workers were stopped first) and its reader thread."""
        try:
            self._control.send(pickle.dumps(("stop",)))
        except OSError:
            pass  # already gone
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        try:
            self._control.shutdown(socket.SHUT_RDWR)  # ends the reader's recv
        except OSError:
            pass
        if self._reader is not threading.current_thread():
            self._reader.join(timeout=10)
        self._control.close()
