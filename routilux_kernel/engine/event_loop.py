"""The runtime's event loop: one daemon thread running asyncio, where ``async def`` logic runs.

Started on the first async activation, so a runtime that never runs one costs nothing, and
``asyncio`` is imported only then. Only coroutines run here; sync logic stays on its
executor, so nothing but short scheduling work (routing, policies, hooks) ever runs on
this thread besides the logic's own code between its awaits.
"""

from __future__ import annotations

import threading
from collections.abc import Coroutine
from typing import Any


class RuntimeEventLoop:
    """Runs coroutines as tasks on one asyncio loop in its own thread."""

    def __init__(self, name: str = "routilux-async") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: Any = None
        self._thread: threading.Thread | None = None
        self._thread_id: int | None = None
        self._stop_requested: Any = None  # an asyncio.Event, set to stop serving
        self._stopped = False
        # asyncio keeps only weak references to tasks: these keep running ones alive.
        self._tasks: set[Any] = set()

    def start_task(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run ``coroutine`` as a task on the loop, starting the loop thread on first use."""
        loop = self._loop
        if loop is None or self._stopped:
            loop = self._start()
        if self._thread_id == threading.get_ident():
            self._create_task(coroutine)  # already on the loop: no wake-up needed
            return
        try:
            loop.call_soon_threadsafe(self._create_task, coroutine)
        except RuntimeError:  # the loop closed between the check above and now
            coroutine.close()
            raise RuntimeError("the runtime's event loop is shut down") from None

    def is_current(self) -> bool:
        """True when called on the loop's thread (where nothing may block)."""
        return self._thread_id is not None and self._thread_id == threading.get_ident()

    def stop(self, wait: bool = True) -> None:
        """Cancel what still runs and end the thread; with ``wait``, join it."""
        with self._lock:
            self._stopped = True
            loop, thread, stop_requested = self._loop, self._thread, self._stop_requested
        if loop is None or thread is None:
            return
        try:
            loop.call_soon_threadsafe(stop_requested.set)
        except RuntimeError:
            pass  # already closed
        if wait and thread is not threading.current_thread():
            thread.join()

    # -- internals -----------------------------------------------------------------------

    def _start(self) -> Any:
        import asyncio

        with self._lock:
            if self._stopped:
                raise RuntimeError("the runtime's event loop is shut down")
            if self._loop is not None:
                return self._loop
            loop = asyncio.new_event_loop()
            self._stop_requested = asyncio.Event()
            started = threading.Event()
            thread = threading.Thread(
                target=self._serve, args=(loop, started), name=self._name, daemon=True
            )
            thread.start()
            started.wait()
            self._thread = thread
            self._loop = loop  # published last: start_task reads it without the lock
            return loop

    def _serve(self, loop: Any, started: threading.Event) -> None:
        import asyncio

        asyncio.set_event_loop(loop)
        self._thread_id = threading.get_ident()
        started.set()
        try:
            loop.run_until_complete(self._until_stopped())
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()

    async def _until_stopped(self) -> None:
        import asyncio

        await self._stop_requested.wait()
        # Jobs are cancelled before the loop stops; logic that outlived its job is cancelled
        # here, and each task still ends through the kernel (its activation is finished).
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)

    def _create_task(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = self._loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
