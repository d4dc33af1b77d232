"""The process pool's shared state and its dispatcher thread: tasks meet workers here.

The dispatcher thread waits on every worker's socket and process, the wake-up pipe, and the
end of a restart delay. It reads whatever a worker sent without blocking (``frames.py``),
hands finished tasks' outcomes to a small thread pool (their callbacks may block), gives
queued tasks to idle workers, and replaces workers that died. ``ProcessExecutor``
(``pool.py``) adds the Executor contract on top.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from typing import Any

from routilux_kernel.core.errors import ExecutorError
from routilux_kernel.core.lazy_logger import logger
from routilux_kernel.executors.process.callbacks import CallbackThreads
from routilux_kernel.executors.process.forked import WorkerTemplate
from routilux_kernel.executors.process.handles import Task, WorkerHandle
from routilux_kernel.executors.process.starting import WorkerStarts, spawn_worker
from routilux_kernel.executors.process.watching import ReadinessWatch
from routilux_kernel.executors.remote import WorkerCrashedError, describe_exit, dumps, loads


class PoolDispatcher:
    """Queued tasks, workers, and the dispatcher thread's handling of what they report."""

    def __init__(self, max_workers: int, worker_plugins: tuple[str, ...]) -> None:
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
        self._starts = WorkerStarts()
        #: Set when workers keep failing to start in a way a restart cannot fix.
        self._broken: str | None = None
        #: Queued tasks no worker can be started for; failed by the next ``_send``.
        self._unrunnable: list[tuple[Task, str]] = []
        self._closing = False
        self._forced = False
        self._dispatcher: threading.Thread | None = None
        self._completions: CallbackThreads | None = None
        self._wake_read = self._wake_write = -1
        #: Changes whenever the set of sockets and pidfds the dispatcher watches may have.
        self._watch_version = 0
        #: Forks the workers; None where forking is not supported (workers then start fresh).
        self._template: WorkerTemplate | None = None

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
            if not self._starts.may_start_now():
                self._wake()  # the dispatcher starts one when the restart delay is over
                break
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
            worker.send(("task", task.id, task.payload, task.on_effects is not None), task)
            # A failed send means the worker is dying; the dispatcher requeues the task.
        if not self._unrunnable:  # filled by this thread's own _assign_locked, if at all
            return
        with self._lock:
            unrunnable, self._unrunnable = self._unrunnable, []
        for task, reason in unrunnable:
            if task.started or task.future.set_running_or_notify_cancel():
                self._complete(task.future.set_exception, ExecutorError(reason))

    def _spawn_locked(self) -> None:
        self._workers.append(
            spawn_worker(
                f"process-worker-{next(self._names)}", self._worker_plugins, self._template
            )
        )
        self._wake()

    def _wake(self) -> None:
        # Whatever woke the dispatcher may have changed what it watches (a worker started,
        # its pidfd arrived): it looks again. A lost increment of two racing wakes still
        # changes the number, and every caller changed what it changed before waking.
        self._watch_version += 1
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
        watch = ReadinessWatch()
        watched: dict[Any, WorkerHandle | None] = {}
        seen_version = -1
        while True:
            with self._lock:
                if self._closing and not self._workers:
                    return
                changed = seen_version != self._watch_version
                if changed:  # rebuilt only then: most wake-ups are replies of the same workers
                    seen_version = self._watch_version
                    watched = {self._wake_read: None}
                    for worker in self._workers:
                        watched[worker.sock] = worker
                        if worker.pidfd is not None:
                            watched[worker.pidfd] = worker
                timeout = self._restart_wait_locked()
            ready_list = watch.wait(watched, timeout, changed)
            if timeout is not None and not ready_list:
                self._restart_due()
            for ready in ready_list:
                if ready == self._wake_read:
                    os.read(self._wake_read, 4096)
                    continue
                owner = watched[ready]
                if owner is None:
                    continue
                try:
                    self._on_ready(owner, ready)
                except Exception:  # a dead dispatcher would hang every future: carry on
                    logger.opt(exception=True).error("process executor: dispatcher error")

    def _restart_wait_locked(self) -> float | None:
        """Seconds until a worker held back by the restart delay may start (None: none is)."""
        if not self._pending or len(self._workers) >= self._max_workers or self._broken:
            return None
        if self._starts.may_start_now():
            return None
        return max(0.0, self._starts.not_before - time.monotonic())

    def _restart_due(self) -> None:
        with self._lock:
            sends = [] if self._closing else self._assign_locked()
        self._send(sends)

    def _on_ready(self, worker: WorkerHandle, ready: Any) -> None:
        if worker.dead:
            return
        if ready is worker.sock:
            messages, closed = worker.reader.read()
            for message in messages:
                self._on_message(worker, message)
            if closed:
                self._on_exit(worker)
        else:
            self._on_exit(worker)

    def _on_message(self, worker: WorkerHandle, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "effects":  # applied off this thread: routing them may wait for room
            task = worker.task
            if task is not None and task.id == message[1] and task.on_effects is not None:
                self._complete(_apply_effects, worker, task.on_effects, message[2])
            return
        finished = None
        with self._lock:
            if kind == "ready":
                worker.ready = True
                self._starts.ready()
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
        if not worker.closed:  # a result sent just before dying still counts
            messages, _ = worker.reader.read(budget=None)
            for message in messages:
                self._on_message(worker, message)
        with self._lock:
            worker.dead = True
            self._workers.remove(worker)
            self._watch_version += 1  # its socket and pidfd are closed below
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
        failure: str | None = None
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
                failure, broken = self._starts.died_before_ready(worker, exitcode)
                if broken:
                    self._broken = failure
                if failure is not None:
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
                self._complete(lost.future.set_exception, ExecutorError(failure))
        if task is None and worker.ready and not self._closing:
            logger.debug("process worker pid {} {} while idle", pid, describe_exit(exitcode))


def _apply_effects(worker: WorkerHandle, on_effects: Callable[[bytes], bytes], data: bytes) -> None:
    try:
        reply = on_effects(data)
    except BaseException as exc:  # noqa: BLE001 - the worker waits for an answer either way
        reply = dumps(ExecutorError(f"applying streamed effects failed: {exc!r}"))
    worker.send(("applied", reply))


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
