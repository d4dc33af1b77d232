"""The ``process`` executor: a pool of worker processes that survives a crashing worker.

``concurrent.futures.ProcessPoolExecutor`` is not used because one dead worker breaks that
whole pool and fails every pending future. Here each worker runs one task at a time over its
own pipe; a dispatcher thread waits on every pipe and every process sentinel, so when a
worker dies exactly the task it held fails (:class:`WorkerCrashedError`) and the pool starts
a fresh worker for the next task.

Workers are fresh interpreters started with ``subprocess`` (fork + exec), not
``multiprocessing``: a bare ``fork`` is unsafe once the parent has threads (a runtime always
has), and multiprocessing's ``spawn``/``forkserver`` re-run the parent's ``__main__`` script
in each worker, which breaks scripts without an ``if __name__ == "__main__"`` guard. A worker
takes about 0.1 s to start; workers are started on demand, up to ``max_workers``, and reused.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from multiprocessing.connection import Connection, wait
from typing import Any

from routilux_kernel.core.errors import ExecutorError
from routilux_kernel.core.lazy_logger import logger
from routilux_kernel.executors.contract import Executor, ExecutorCapabilities
from routilux_kernel.executors.pickling import require_cloudpickle
from routilux_kernel.executors.process.handles import Task, WorkerHandle
from routilux_kernel.executors.remote import WorkerCrashedError, describe_exit, dumps, loads
from routilux_kernel.hooks.specs import hookimpl

#: Consecutive workers that may die before saying "ready" until the pool gives up.
MAX_START_FAILURES = 3

_BOOT = "from routilux_kernel.executors.process.worker import worker_main; worker_main()"
#: The folder holding the routilux_kernel package, put on a worker's PYTHONPATH.
_PACKAGE_ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
)


class ProcessExecutor(Executor):
    """Runs each activation in a worker process; a crashed worker fails only its activation.

    ``max_workers`` defaults to ``os.cpu_count()``. ``worker_plugins`` are module names
    registered as routilux plugins in each worker, besides the installed ones.
    """

    name = "process"
    capabilities = ExecutorCapabilities(
        in_process=False, pickles=True, cancel_running=True, remote=False
    )

    def __init__(self, max_workers: int | None = None, worker_plugins: Iterable[str] = ()) -> None:
        if max_workers is None:
            max_workers = os.cpu_count() or 1
        if not isinstance(max_workers, int) or max_workers < 1:
            raise ValueError(
                f"process executor: max_workers must be an int >= 1, got {max_workers!r}"
            )
        self._max_workers = max_workers
        self._worker_plugins = tuple(worker_plugins)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._workers: list[WorkerHandle] = []
        self._idle: deque[WorkerHandle] = deque()
        self._pending: deque[Task] = deque()
        self._tasks: dict[Future[Any], Task] = {}
        self._ids = itertools.count(1)
        self._names = itertools.count(1)
        self._start_failures = 0
        self._broken: str | None = None
        #: Queued tasks no worker can be started for; failed by the next ``_send``.
        self._unrunnable: list[tuple[Task, str]] = []
        self._closing = False
        self._dispatcher: threading.Thread | None = None
        self._completions: ThreadPoolExecutor | None = None
        self._wake_read = self._wake_write = -1

    # -- the Executor contract -----------------------------------------------------------

    def start(self) -> None:
        require_cloudpickle()
        with self._lock:
            if self._dispatcher is not None:
                return
            if self._closing:
                raise ExecutorError("process executor was shut down; create a new one")
            self._wake_read, self._wake_write = os.pipe()
            os.set_blocking(self._wake_write, False)
            # Future callbacks apply results and may block on a full slot: never on the
            # dispatcher thread, which must keep reading pipes.
            self._completions = ThreadPoolExecutor(
                max(2, self._max_workers), thread_name_prefix="routilux-process-done"
            )
            self._dispatcher = threading.Thread(
                target=self._dispatch_loop, name="routilux-process-dispatcher", daemon=True
            )
            self._dispatcher.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        if self._dispatcher is None and not self._closing:
            self.start()
        payload = dumps((fn, args))
        future: Future[Any] = Future()
        with self._lock:
            if self._closing:
                raise RuntimeError("process executor is shut down; it takes no new work")
            if self._broken:
                raise ExecutorError(self._broken)
            task = Task(next(self._ids), future, payload)
            self._pending.append(task)
            self._tasks[future] = task
            sends = self._assign_locked()
        self._send(sends)
        return future

    def cancel(self, future: Future[Any], force: bool = False) -> bool:
        """Queued: dropped (True). Running: with ``force`` its worker is killed (True),
        otherwise the logic is told (``job_state.cancel_requested``) and False is returned."""
        with self._lock:
            task = self._tasks.get(future)
            if task is None or future.done():
                return False
            worker = task.worker
            if worker is None:
                self._pending.remove(task)
                del self._tasks[future]
            elif force:
                task.stop_reason = "force-cancelled"
                # Under the lock, and never reused: otherwise the dispatcher may give this
                # worker the next task (its reply to this one may be on the way), and the
                # kill fails that task instead.
                worker.exiting = True
                worker.process.kill()
        if worker is None:
            # Callbacks must not run here: the caller may hold its job's lock.
            self._complete(future.cancel)
            return True
        if force:
            return True
        worker.send(("cancel", task.id))
        return False

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            dispatcher, self._dispatcher = self._dispatcher, None
            self._closing = True
            if dispatcher is None:  # never started, or already shut down
                return
            if wait:
                self._changed.wait_for(lambda: not self._pending and not self._busy_locked())
            dropped = list(self._pending)
            self._pending.clear()
            for task in dropped:
                self._tasks.pop(task.future, None)
            workers = list(self._workers)
            for worker in workers:
                if worker.task is not None:
                    worker.task.stop_reason = "stopped by shutdown(wait=False)"
        for task in dropped:
            task.future.cancel()
        for worker in workers:
            if worker.task is None and worker.ready:
                worker.send(("stop",))
            else:  # busy (wait=False) or still starting: nothing worth waiting for
                worker.process.kill()
        self._wake()
        if dispatcher is not threading.current_thread():
            dispatcher.join(timeout=30)
        for worker in workers:
            if worker.process.poll() is None:
                worker.process.kill()
            worker.process.wait()
        completions = self._completions
        if completions is not None:
            in_callback = threading.current_thread().name.startswith("routilux-process-done")
            completions.shutdown(wait=wait and not in_callback)
        with self._lock:
            wake_fds, self._wake_read, self._wake_write = (
                (self._wake_read, self._wake_write),
                -1,
                -1,
            )
        for fd in wake_fds:
            os.close(fd)

    @property
    def max_workers(self) -> int:
        return self._max_workers

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (for tests and monitoring)."""
        with self._lock:
            return [worker.process.pid for worker in self._workers if not worker.dead]

    # -- assigning tasks to workers ------------------------------------------------------

    def _busy_locked(self) -> bool:
        return any(worker.task is not None for worker in self._workers)

    def _assign_locked(self) -> list[tuple[WorkerHandle, Task]]:
        """Give queued tasks to idle workers, starting workers as needed (lock held)."""
        sends = []
        while self._pending and self._idle:
            task = self._pending.popleft()
            if not task.started:
                if not task.future.set_running_or_notify_cancel():
                    self._tasks.pop(task.future, None)
                    continue
                task.started = True
            worker = self._idle.popleft()
            worker.task = task
            task.worker = worker
            sends.append((worker, task))
        starting = sum(1 for worker in self._workers if not worker.ready)
        missing = len(self._pending) - starting
        while missing > 0 and len(self._workers) < self._max_workers and not self._broken:
            try:
                self._spawn_locked()
            except Exception as exc:  # out of file descriptors or processes, say
                self._spawn_failed_locked(exc)
                break
            missing -= 1
        return sends

    def _spawn_failed_locked(self, exc: Exception) -> None:
        """No worker could be started now. Raising here would leave the futures of a
        dispatcher-thread caller (a crashed task, a finished one) never completed."""
        logger.opt(exception=exc).error("process executor: could not start a worker process")
        if self._workers:
            return  # the live workers take the queued tasks when they are free
        reason = (
            "process executor: no worker process is running and none could be started: "
            f"{type(exc).__name__}: {exc}"
        )
        for task in self._pending:
            self._tasks.pop(task.future, None)
            self._unrunnable.append((task, reason))
        self._pending.clear()

    def _send(self, sends: list[tuple[WorkerHandle, Task]]) -> None:
        """Send what ``_assign_locked`` assigned, and fail what it could not run (no lock)."""
        for worker, task in sends:
            worker.send(("task", task.id, task.payload), task)
            # A failed send means the worker is dying; the dispatcher requeues the task.
        if not self._unrunnable:  # filled by this thread's own _assign_locked, if at all
            return
        with self._lock:
            unrunnable, self._unrunnable = self._unrunnable, []
        for task, reason in unrunnable:
            if task.started or task.future.set_running_or_notify_cancel():
                self._complete(task.future.set_exception, ExecutorError(reason))

    def _spawn_locked(self) -> None:
        name = f"process-worker-{next(self._names)}"
        parent_end, child_end = socket.socketpair()
        env = dict(os.environ)
        package_root = _PACKAGE_ROOT
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, env.get("PYTHONPATH", "")) if p
        )
        try:
            process = subprocess.Popen(
                [sys.executable, "-c", _BOOT, str(child_end.fileno())],
                pass_fds=(child_end.fileno(),),
                stdin=subprocess.DEVNULL,
                env=env,
            )
        except BaseException:
            parent_end.close()
            raise
        finally:
            child_end.close()
        worker = WorkerHandle(name, process, Connection(parent_end.detach()))
        worker.send(("init", list(sys.path), name, self._worker_plugins))
        self._workers.append(worker)
        self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_write, b"x")
        except (BlockingIOError, OSError):
            pass  # already awake, or closed during shutdown

    def _complete(self, fn: Callable[..., Any], *args: Any) -> None:
        completions = self._completions
        try:
            if completions is not None:
                completions.submit(fn, *args)
                return
        except RuntimeError:
            pass  # shutting down: run it here
        fn(*args)

    # -- the dispatcher thread -----------------------------------------------------------

    def _dispatch_loop(self) -> None:
        while True:
            with self._lock:
                if self._closing and not self._workers:
                    return
                watched: dict[Any, WorkerHandle] = {}
                for worker in self._workers:
                    watched[worker.conn] = worker
                    if worker.pidfd is not None:
                        watched[worker.pidfd] = worker
            for ready in wait([self._wake_read, *watched]):
                if ready == self._wake_read:
                    os.read(self._wake_read, 4096)
                    continue
                worker = watched[ready]
                try:
                    self._on_ready(worker, ready)
                except Exception:  # a dead dispatcher would hang every future: carry on
                    logger.opt(exception=True).error("process executor: dispatcher error")

    def _on_ready(self, worker: WorkerHandle, ready: Any) -> None:
        if worker.dead:
            return
        if ready is worker.conn:
            try:
                message = worker.conn.recv()
            except (EOFError, OSError):
                self._on_exit(worker)
                return
            self._on_message(worker, message)
        else:
            self._on_exit(worker)

    def _on_message(self, worker: WorkerHandle, message: tuple[Any, ...]) -> None:
        kind = message[0]
        finished = None
        with self._lock:
            if kind == "ready":
                worker.ready = True
                self._start_failures = 0
            elif kind == "failed":
                worker.start_error = message[1]
                return
            elif kind == "done":
                finished, worker.task = worker.task, None
                if finished is not None:
                    self._tasks.pop(finished.future, None)
            if worker.exiting:
                pass  # a last message read while handling its exit
            elif self._closing and not self._pending:
                worker.send(("stop",))
            else:
                self._idle.append(worker)
            sends = self._assign_locked()
            self._changed.notify_all()
        self._send(sends)
        if finished is not None and kind == "done":
            if finished.stop_reason is not None:  # its reply crossed the kill: cancel won
                stopped = CancelledError(f"{finished.stop_reason}: worker process was killed")
                self._complete(finished.future.set_exception, stopped)
            else:
                self._complete(_set_outcome, finished.future, message[2], message[3])

    def _on_exit(self, worker: WorkerHandle) -> None:
        with self._lock:
            worker.exiting = True
        while not worker.conn.closed:  # a result sent just before dying still counts
            try:
                if not worker.conn.poll(0):
                    break
                self._on_message(worker, worker.conn.recv())
            except (EOFError, OSError):
                break
        with self._lock:
            worker.dead = True
            self._workers.remove(worker)
            if worker in self._idle:
                self._idle.remove(worker)
            task, worker.task = worker.task, None
        try:
            exitcode = worker.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # closed its pipe but lives on: not usable
            worker.process.kill()
            exitcode = worker.process.wait()
        worker.close()
        failed: list[Task] = []
        with self._lock:
            if task is not None and not task.sent and task.stop_reason is None:
                task.worker = None
                self._pending.appendleft(task)  # it never reached the worker: run it elsewhere
                task = None
            if task is not None:
                self._tasks.pop(task.future, None)
            # Counted while closing too: shutdown(wait=True) waits for queued tasks, and
            # without the limit a pool whose workers cannot start would respawn forever.
            if not worker.ready:
                self._start_failures += 1
                if self._start_failures >= MAX_START_FAILURES:
                    self._broken = (
                        f"process executor: {MAX_START_FAILURES} worker processes in a row failed "
                        f"to start; the last {describe_exit(exitcode)}: "
                        f"{worker.start_error.strip() or 'no error output'}"
                    )
                    failed = list(self._pending)
                    self._pending.clear()
                    for lost in failed:  # under the lock, or a cancel finds it half-removed
                        self._tasks.pop(lost.future, None)
            sends = [] if self._closing and not self._pending else self._assign_locked()
            self._changed.notify_all()
        self._send(sends)
        pid = worker.process.pid
        if task is not None:
            if task.stop_reason is not None:
                error: BaseException = CancelledError(
                    f"{task.stop_reason}: worker process pid {pid} was killed"
                )
            else:
                error = WorkerCrashedError(
                    f"worker process pid {pid} {describe_exit(exitcode)}", pid, exitcode
                )
            self._complete(task.future.set_exception, error)
        for lost in failed:
            if lost.started or lost.future.set_running_or_notify_cancel():
                self._complete(lost.future.set_exception, ExecutorError(self._broken))
        if task is None and worker.ready and not self._closing:
            logger.debug("process worker pid {} {} while idle", pid, describe_exit(exitcode))


def _set_outcome(future: Future[Any], ok: bool, data: bytes) -> None:
    try:
        value = loads(data)
    except Exception as exc:
        future.set_exception(
            ExecutorError(f"the result of a process task could not be unpickled: {exc}")
        )
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


@hookimpl
def register_executors(register: Callable[..., None]) -> None:
    register("process", ProcessExecutor)
