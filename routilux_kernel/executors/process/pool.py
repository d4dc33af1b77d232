"""The ``process`` executor: a pool of worker processes that survives a crashing worker.

``concurrent.futures.ProcessPoolExecutor`` is not used because one dead worker breaks that
whole pool and fails every pending future. Here each worker runs one task at a time over its
own socket; a dispatcher thread waits on every socket and every process sentinel, so when a
worker dies exactly the task it held fails (:class:`WorkerCrashedError`) and the pool starts
a fresh worker for the next task. The dispatcher never blocks on one worker: it reads what
has arrived (``frames.py``), so a worker stopped half-way through a reply holds up only its
own task. How workers are started, and restarted after dying while starting, is in
``starting.py``: they are forked from a template process that imported the kernel and the
plugins once (``template.py``), in a few milliseconds each; workers are started on demand,
up to ``max_workers``, and reused.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any

from routilux_kernel.core.errors import ExecutorError
from routilux_kernel.executors.contract import Executor, ExecutorCapabilities
from routilux_kernel.executors.pickling import dumps_call, require_cloudpickle
from routilux_kernel.executors.process.callbacks import CallbackThreads
from routilux_kernel.executors.process.dispatcher import PoolDispatcher
from routilux_kernel.executors.process.forked import WorkerTemplate, forking_supported
from routilux_kernel.executors.process.handles import Task


class ProcessExecutor(PoolDispatcher, Executor):
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
        super().__init__(max_workers, tuple(worker_plugins))

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
            if forking_supported():
                # Started now, so its imports overlap with whatever runs before the first task.
                self._template = WorkerTemplate(self._worker_plugins, self._wake)
            # Future callbacks apply results and may block on a full slot: never on the
            # dispatcher thread, which must keep reading pipes.
            # Each worker may hold one thread applying its streamed effects (maybe blocked
            # on a full slot) while the outcome of its previous task is applied on another.
            self._completions = CallbackThreads(2 * self._max_workers + 2, "routilux-process-done")
            self._dispatcher = threading.Thread(
                target=self._dispatch_loop, name="routilux-process-dispatcher", daemon=True
            )
            self._dispatcher.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        return self._submit(fn, args, None)

    def submit_streamed(
        self, fn: Callable[..., Any], on_effects: Callable[[bytes], bytes], /, *args: Any
    ) -> Future[Any]:
        """Like ``submit``; effects the remote logic streams while it runs (each ``emit``)
        go to ``on_effects`` on a thread that may block, and its reply back to the logic."""
        return self._submit(fn, args, on_effects)

    def _submit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        on_effects: Callable[[bytes], bytes] | None,
    ) -> Future[Any]:
        if self._dispatcher is None and not self._closing:
            self.start()
        payload = dumps_call(fn, args)
        future: Future[Any] = Future()
        with self._lock:
            if self._closing:
                raise RuntimeError("process executor is shut down; it takes no new work")
            if self._broken:
                raise ExecutorError(self._broken)
            task = Task(next(self._ids), future, payload, on_effects)
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
        """Stop the workers; ``wait=False`` kills running work, also that of a shutdown(wait=True)
        another thread is waiting in."""
        with self._lock:
            if not wait:
                self._forced = True
                self._changed.notify_all()
            dispatcher, self._dispatcher = self._dispatcher, None
            self._closing = True
            if dispatcher is None:  # never started, or already shut down (or shutting down)
                return
            if wait:
                self._changed.wait_for(
                    lambda: self._forced or (not self._pending and not self._busy_locked())
                )
                wait = not self._forced
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
        with self._lock:
            template, self._template = self._template, None
        if template is not None:  # after the workers: it reports their exit codes
            template.close()
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
            return [
                worker.process.pid
                for worker in self._workers
                if not worker.dead and worker.process.pid is not None
            ]
