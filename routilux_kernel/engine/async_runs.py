"""Async activations: ``async def`` logic runs as a task on the runtime's event loop.

A part of :class:`~routilux_kernel.engine.job_run.JobRun`, which combines the parts; every
method runs on a JobRun and follows its locking rules (see ``job_run.py``).

An async activation takes the same path as a sync one (policy, ``_dispatch``, ``_finish``)
except that ``_dispatch`` hands it to the loop instead of the executor, and the task,
not a worker thread, runs it. Logic that is not declared ``async def`` but returns an
awaitable (a callable object with an ``async __call__``, a lambda returning a coroutine)
is called on its executor and the awaitable is then awaited on the loop the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from routilux_kernel.core.context import current_activation
from routilux_kernel.core.effect_recording import current_recorder
from routilux_kernel.core.lazy_logger import loguru_context
from routilux_kernel.engine.activation import Activation
from routilux_kernel.engine.job_base import JobBase


class AsyncActivations(JobBase):
    """Async activations of one job."""

    def _dispatch_to_loop(self, activation: Activation) -> None:
        """Run async logic as a task on the runtime's loop (raises if the loop is shut down)."""
        self.runtime._event_loop.start_task(self._run_async(activation, None))

    def _await_on_loop(self, activation: Activation, awaitable: Awaitable[Any]) -> None:
        """Await on the loop what logic called on a worker thread returned."""
        self.runtime._event_loop.start_task(self._run_async(activation, awaitable))

    async def _run_async(self, activation: Activation, awaitable: Awaitable[Any] | None) -> None:
        import asyncio

        with self.lock:  # decided together with _close_locked: run it, or its data is kept
            if not self.closed:
                activation.running = True
                activation.task = asyncio.current_task()
        if not activation.running:  # the job ended while this waited to start
            self._finish(activation, None)
            return
        state = self.job_state
        routine_id = activation.run.spec.routine_id
        error: BaseException | None = None
        # The task runs in its own copy of the context: these never leak to other tasks.
        current_activation.set(activation.run)
        checkpoint = activation.checkpoint
        if checkpoint is not None:  # its state writes and emits go into its checkpoint
            checkpoint.ran = True
            current_recorder.set(checkpoint)
        _bind_log_context(state.job_id, routine_id)
        try:
            if awaitable is None:  # declared async: the hooks and the call happen here
                awaitable = self._call_logic(activation)
            if awaitable is not None:
                await awaitable
        except asyncio.CancelledError as exc:
            # Cancelled because its job ended (cancel, timeout, a STOP elsewhere): a normal end.
            error = None if self.closed else exc
        except BaseException as exc:  # noqa: BLE001 - every failure goes to the error strategy
            error = exc
        finally:
            activation.task = None
        self._logic_returned(activation, error)

    def _cancel_task_locked(self, activation: Activation) -> None:
        """Cancel a running async activation whose job just ended (caller holds the lock)."""
        task = activation.task
        if task is not None:
            task.get_loop().call_soon_threadsafe(task.cancel)


def _bind_log_context(job_id: str, routine_id: str) -> None:
    # The same binding the worker wrapper makes for sync logic; only when loguru is in use.
    context = loguru_context()
    if context is not None:
        context.set({**context.get(), "job_id": job_id, "routine_id": routine_id})
