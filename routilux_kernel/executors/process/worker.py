"""The worker side of the ``process`` executor: one interpreter running one task at a time.

The template process (``template.py``) forks it, or, where forking is not available, the pool
starts it as ``python -c`` (:func:`worker_main`). Either way it gets a socket to the driver,
reads the driver's ``sys.path`` and plugin list, then tasks; a reader thread takes cancels,
replies to streamed effects, and the stop message while a task runs.
"""

from __future__ import annotations

import atexit
import os
import queue
import signal
import sys
import threading
import traceback
from multiprocessing.connection import Connection
from typing import Any

from routilux_kernel.core.errors import RoutineError
from routilux_kernel.executors.pickling import dumps, loads


def worker_main() -> None:
    """Entry point of a worker started as ``python -c`` (argv[1] is its socket)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    run_worker(Connection(int(sys.argv[1])))


def run_worker(conn: Connection) -> None:
    """Set up, then run tasks one at a time until told to stop; ends the process."""
    _, sys_path, name, plugins, entry_points = conn.recv()
    sys.path[:] = sys_path
    try:
        from routilux_kernel.executors import remote

        remote.use_driver_entry_points(entry_points)
        remote.setup_worker("process", name, plugins=plugins)
    except BaseException:  # noqa: BLE001 - reported to the driver, then this worker exits
        text = traceback.format_exc()
        sys.stderr.write(f"routilux {name} failed to start:\n{text}")
        conn.send(("failed", text))
        raise SystemExit(1) from None
    tasks: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
    cancelled: set[int] = set()
    current: list[int | None] = [None]
    applied: queue.SimpleQueue[bytes] = queue.SimpleQueue()  # the driver's effect replies

    def read() -> None:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                os._exit(0)  # the driver is gone: nobody will read our results
            if message[0] == "task":
                tasks.put(message)
            elif message[0] == "cancel":
                cancelled.add(message[1])
            elif message[0] == "applied":
                applied.put(message[1])
            else:
                tasks.put(None)

    threading.Thread(target=read, name="routilux-worker-reader", daemon=True).start()
    remote.set_cancel_probe(lambda: current[0] in cancelled)
    conn.send(("ready", os.getpid()))

    def stream_effects(batch: bytes) -> BaseException | None:
        conn.send(("effects", current[0], batch))
        error: BaseException | None = loads(applied.get())
        return error

    while (message := tasks.get()) is not None:
        _, task_id, payload, streamed = message
        cancelled &= {task_id}  # only this task can be cancelled now: drop late cancels
        current[0] = task_id
        remote.set_effect_stream(stream_effects if streamed else None)
        try:
            fn, args = loads(payload)
            reply = ("done", task_id, True, dumps(fn(*args)))
        except BaseException as exc:  # noqa: BLE001 - the task fails, the worker lives on
            reply = ("done", task_id, False, dumps(RoutineError.from_exception(exc)))
        current[0] = None
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass  # logic closed or replaced the stream: the result still goes back
        conn.send(reply)
    # Told to stop. A normal exit would wait for every non-daemon thread logic left running,
    # and the driver's shutdown would wait for this process; atexit handlers still run.
    try:
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass
        os._exit(0)
