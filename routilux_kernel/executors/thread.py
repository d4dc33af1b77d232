"""The default executor: a pool of threads in this process."""

from __future__ import annotations

import atexit
import os
import queue
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from routilux_kernel.core.lazy_logger import logger
from routilux_kernel.executors.contract import Executor, ExecutorCapabilities
from routilux_kernel.hooks.specs import hookimpl

if TYPE_CHECKING:
    from concurrent.futures import Future

_STOP = object()
_live: weakref.WeakSet[ThreadExecutor] = weakref.WeakSet()


@atexit.register
def _finish_queued_work_at_exit() -> None:
    # Workers are daemon threads (a forgotten runtime must not hang the interpreter), so
    # let work already handed over finish before the interpreter tears them down.
    for executor in list(_live):
        executor.shutdown(wait=True)


class ThreadExecutor(Executor):
    """Activations run on up to ``max_workers`` threads; logic sees the live JobState.

    The kernel hands work over with :meth:`dispatch`, which skips the Future that
    ``ThreadPoolExecutor.submit`` builds per task: the kernel does its own completion
    tracking, and this is the hottest call it makes. :meth:`submit` still returns a Future
    for anyone else. Threads start on demand, when no started thread is idle: each idle
    worker leaves one token in a queue, and a dispatch that finds no token starts a thread
    (up to ``max_workers``) which takes the dispatched task as its first.
    """

    name = "thread"
    capabilities = ExecutorCapabilities(in_process=True)

    @staticmethod
    def default_max_workers() -> int:
        """The pool size when none is given: ``min(32, cpu_count + 4)``, as the stdlib's."""
        return min(32, (os.cpu_count() or 1) + 4)

    def __init__(
        self, max_workers: int | None = None, thread_name_prefix: str = "routilux"
    ) -> None:
        if max_workers is None:
            max_workers = self.default_max_workers()
        if not isinstance(max_workers, int) or max_workers < 1:
            raise ValueError(
                f"thread executor: max_workers must be an int >= 1, got {max_workers!r}"
            )
        self._max_workers = max_workers
        self._prefix = thread_name_prefix
        self._tasks: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._idle_tokens: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._shut_down = False
        _live.add(self)

    def dispatch(self, fn: Callable[[Any], Any], argument: Any, /) -> None:
        if self._shut_down:
            raise RuntimeError("thread executor is shut down")
        try:
            self._idle_tokens.get_nowait()  # an idle worker will take this task
        except queue.Empty:
            if len(self._threads) < self._max_workers:
                self._add_thread()  # before queueing: if that fails, nothing is queued
        self._tasks.put((fn, argument))

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        from concurrent.futures import Future  # the kernel dispatches; only others pay for it

        future: Future[Any] = Future()

        def run(_: Any) -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to the future's owner
                future.set_exception(exc)
            else:
                future.set_result(result)

        self.dispatch(run, None)
        return future

    def _add_thread(self) -> None:
        with self._lock:
            if self._shut_down or len(self._threads) >= self._max_workers:
                return
            thread = threading.Thread(
                target=self._work, name=f"{self._prefix}-{len(self._threads)}", daemon=True
            )
            self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        tasks = self._tasks
        idle_tokens = self._idle_tokens
        first = True  # a new thread was started for a task already on its way
        while True:
            if not first:
                idle_tokens.put(None)
            first = False
            task = tasks.get()
            if task is _STOP:
                return
            fn, argument = task
            try:
                fn(argument)
            except BaseException:  # noqa: BLE001 - a worker must survive anything
                logger.opt(exception=True).error("task on thread executor raised")
            del task, fn, argument

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            if self._shut_down:
                threads = []
            else:
                self._shut_down = True
                threads = list(self._threads)
        if not wait:  # drop queued work; running work finishes on its own
            while True:
                try:
                    self._tasks.get_nowait()
                except queue.Empty:
                    break
        for _ in threads:
            self._tasks.put(_STOP)
        if wait:
            current = threading.current_thread()
            for thread in threads:
                if thread is not current:
                    thread.join()

    @property
    def max_workers(self) -> int:
        return self._max_workers


@hookimpl
def register_executors(register: Callable[..., None]) -> None:
    register("thread", ThreadExecutor)
