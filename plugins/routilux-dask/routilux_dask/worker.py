"""Worker-side setup on each Dask worker: routilux plugins, cancel probe, loguru forwarding."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from distributed import Event, WorkerPlugin, get_worker
from loguru import logger

from routilux_kernel.executors import remote

#: The distributed event topic loguru records travel on, worker -> scheduler -> driver.
LOG_TOPIC = "routilux-loguru"

#: How often running logic may ask the scheduler whether its task was cancelled.
CANCEL_CHECK_INTERVAL = 0.2


def cancel_event_name(key: Any) -> str:
    """The distributed Event a driver sets to ask the logic of task ``key`` to stop."""
    return f"routilux-cancel-{key}"


class RoutiluxWorkerPlugin(WorkerPlugin):
    """Loads the routilux plugins (``worker_setup`` hook) and forwards loguru records.

    Registered by :class:`~routilux_dask.DaskExecutor` on every worker, present and future.
    With ``forward_logs``, the worker's default loguru sink (stderr) is replaced by one that
    sends each record at ``log_level`` or above to the driver.
    """

    name = "routilux"

    def __init__(
        self, forward_logs: bool = True, log_level: str = "DEBUG", plugins: tuple[str, ...] = ()
    ) -> None:
        self.forward_logs = forward_logs
        self.log_level = log_level
        self.plugins = tuple(plugins)
        self._sink_id: int | None = None
        # Set on the driver; a worker in the same process (LocalCluster(processes=False))
        # shares the driver's loguru, whose records must not be forwarded back to it.
        self._driver_pid = os.getpid()

    def setup(self, worker: Any) -> None:
        remote.setup_worker("dask", str(worker.name), backend=worker, plugins=self.plugins)
        remote.set_cancel_probe(_CancelProbe())
        if self.forward_logs and os.getpid() != self._driver_pid:
            try:
                logger.remove(0)  # loguru's default stderr sink: records go to the driver
            except ValueError:
                pass
            self._sink_id = logger.add(
                _ForwardingSink(worker), level=self.log_level, format="{message}", catch=True
            )

    def teardown(self, worker: Any) -> None:
        if self._sink_id is not None:
            logger.remove(self._sink_id)
            self._sink_id = None


class _ForwardingSink:
    """A loguru sink that sends each record to the driver as a distributed event."""

    def __init__(self, worker: Any) -> None:
        self.worker = worker

    def __call__(self, message: Any) -> None:
        record = message.record
        exception = record["exception"]
        text = record["message"]
        if exception is not None and exception.type is not None:
            import traceback

            text += (
                "\n"
                + "".join(
                    traceback.format_exception(exception.type, exception.value, exception.traceback)
                ).rstrip()
            )
        self.worker.log_event(
            LOG_TOPIC,
            {
                "level": record["level"].name,
                "level_no": record["level"].no,
                "message": text,
                "name": record["name"],
                "function": record["function"],
                "line": record["line"],
                "time": record["time"].timestamp(),
                "extra": {str(k): str(v) for k, v in record["extra"].items()},
                "worker": self.worker.address,
            },
        )


class _CancelProbe:
    """Answers ``job_state.cancel_requested`` for the task running in this thread."""

    def __init__(self) -> None:
        self._local = threading.local()

    def __call__(self) -> bool:
        try:
            key = get_worker().get_current_task()
        except Exception:  # asked from a thread the logic started: no task to look up
            return False
        local = self._local
        now = time.monotonic()
        if getattr(local, "key", None) == key and now - local.checked < CANCEL_CHECK_INTERVAL:
            return bool(local.answer)
        try:
            answer = Event(cancel_event_name(key)).is_set()
        except Exception:  # no scheduler to ask: the snapshot's answer stands
            answer = False
        local.key, local.checked, local.answer = key, now, answer
        return bool(answer)
