"""The template process: a pre-imported interpreter that forks the ``process`` executor's workers.

It is started once per pool with ``python -c`` (so it never runs the user's ``__main__``
script), imports the kernel and the installed plugins, checks that no import left a thread
running, and then does nothing but fork. Forking it is safe where forking the driver is
not: it has one thread, so no lock can be held by a thread that the child would lack. A
forked worker starts in milliseconds instead of paying the imports again.

The driver talks to it over a ``SOCK_SEQPACKET`` socket (one pickle per packet, file
descriptors alongside, see ``forked.py`` for the driver side):

- driver -> template: ``("init", sys_path, plugins, entry_points)`` once, then
  ``("fork", request, cwd)`` with the worker's end of a new socket pair, and finally
  ``("stop",)``;
- template -> driver: ``("ready",)`` or ``("unforkable", reason)``; ``("forked", request,
  pid)`` with a pidfd of the child; ``("exited", pid, exitcode)`` once it reaped a child.

The template is the workers' parent, so only it can learn their exit codes; it reaps each
child as soon as its pidfd says it ended and reports the code.
"""

from __future__ import annotations

import gc
import os
import pickle
import select
import signal
import socket
import sys
import threading
import traceback
from typing import Any, NoReturn

#: The largest control packet: an ``init`` carries the driver's ``sys.path``.
PACKET_LIMIT = 1 << 20


def template_main() -> None:
    """Entry point of the template process (``python -c``, argv[1] is the control socket)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    control = socket.socket(fileno=int(sys.argv[1]))
    first = control.recv(PACKET_LIMIT)
    if not first:
        return
    _, sys_path, plugins, entry_points = pickle.loads(first)
    sys.path[:] = sys_path
    from routilux_kernel.executors import remote
    from routilux_kernel.executors.pickling import require_cloudpickle

    try:
        remote.preload_worker_plugins(plugins, entry_points)
        require_cloudpickle()  # every worker unpickles its first task with it
    except BaseException:  # noqa: BLE001 - each worker tries again and reports it as its own
        pass
    threads = [thread.name for thread in threading.enumerate()]
    if len(threads) > 1:
        _send(control, ("unforkable", f"importing the plugins started threads: {threads}"))
        return
    gc.freeze()  # the children share these pages until they write to them
    _send(control, ("ready",))
    _serve(control)


def _send(control: socket.socket, message: tuple[Any, ...], fds: list[int] | None = None) -> None:
    data = pickle.dumps(message)
    if fds:
        socket.send_fds(control, [data], fds)
    else:
        control.send(data)


def _serve(control: socket.socket) -> None:
    children: dict[int, int] = {}  # pidfd -> pid of each worker not yet reaped
    while True:
        watched: list[Any] = [control, *children]
        readable, _, _ = select.select(watched, [], [])
        for ready in readable:
            if ready is control:
                if not _on_request(control, children):
                    return  # told to stop, or the driver is gone; workers end with their sockets
                continue
            pidfd = int(ready)
            pid = children.pop(pidfd)
            _, status = os.waitpid(pid, 0)
            os.close(pidfd)
            _send(control, ("exited", pid, os.waitstatus_to_exitcode(status)))


def _on_request(control: socket.socket, children: dict[int, int]) -> bool:
    try:
        data, fds, _, _ = socket.recv_fds(control, PACKET_LIMIT, 1)
    except OSError:
        return False
    if not data:
        return False
    message = pickle.loads(data)
    if message[0] != "fork":
        return False
    _, request, cwd = message
    (worker_fd,) = fds
    pid = os.fork()
    if pid == 0:
        _become_worker(control, children, worker_fd, cwd)
    os.close(worker_fd)
    pidfd = os.pidfd_open(pid)
    children[pidfd] = pid
    _send(control, ("forked", request, pid), [pidfd])
    return True


def _become_worker(
    control: socket.socket, children: dict[int, int], worker_fd: int, cwd: str
) -> NoReturn:
    """In the forked child: drop the template's descriptors and run the worker loop."""
    code = 1
    try:
        control.close()
        for pidfd in children:
            os.close(pidfd)
        try:
            os.chdir(cwd)  # the driver's directory when it asked for this worker
        except OSError:
            pass
        from multiprocessing.connection import Connection

        from routilux_kernel.executors.process.worker import run_worker

        run_worker(Connection(worker_fd))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - the child must never return into the template's loop
        traceback.print_exc()
    finally:
        os._exit(code)
