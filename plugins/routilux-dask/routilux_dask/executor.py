"""The ``dask`` executor: activations run as tasks on a Dask ``distributed`` cluster.

It speaks the kernel's remote protocol: the kernel submits
``routilux_kernel.executors.remote.run_remote_activation`` with the pickled activation, and
applies the recorded writes and emits when the future completes. This module only bridges
``distributed`` futures to ``concurrent.futures`` ones and owns the cluster connection.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from routilux_kernel.core.lazy_logger import logger  # loguru on first use: --help stays fast
from routilux_kernel.executors import Executor, ExecutorCapabilities


@contextmanager
def _main_script_hidden() -> Iterator[None]:
    """Keep the LocalCluster's worker processes from re-running the driver's script.

    Workers start with multiprocessing's spawn, which imports the parent's ``__main__``
    script again in every worker: a script without an ``if __name__ == "__main__":`` guard
    (the tutorial's, for one) would start a second runtime inside each worker. Routines
    travel by value (cloudpickle), so workers never need that script; while the cluster
    starts, ``__main__`` shows no file or spec to spawn.
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved: dict[str, Any] = {
        key: main.__dict__[key] for key in ("__file__", "__spec__") if key in main.__dict__
    }
    main.__dict__.pop("__file__", None)
    main.__dict__["__spec__"] = None
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


class DaskExecutor(Executor):
    """Runs activations on a Dask cluster.

    ``address=None`` starts a ``distributed.LocalCluster`` of ``max_workers`` worker
    processes (default ``os.cpu_count()``), one thread each; ``address="tcp://host:8786"``
    joins an existing scheduler (``max_workers`` is then ignored). A task whose worker dies
    fails its activation (:class:`WorkerCrashedError`); on a LocalCluster the scheduler is
    told not to retry such tasks on other workers. ``cluster_options`` go to LocalCluster.
    """

    name = "dask"
    capabilities = ExecutorCapabilities(
        in_process=False, pickles=True, cancel_running=False, remote=True
    )

    def __init__(
        self,
        address: str | None = None,
        max_workers: int | None = None,
        *,
        forward_logs: bool = True,
        log_level: str = "DEBUG",
        worker_plugins: Iterable[str] = (),
        cluster_options: dict[str, Any] | None = None,
    ) -> None:
        if max_workers is not None and (not isinstance(max_workers, int) or max_workers < 1):
            raise ValueError(f"dask executor: max_workers must be an int >= 1, got {max_workers!r}")
        if address is not None and not isinstance(address, str):
            raise ValueError(f"dask executor: address must be a scheduler address, got {address!r}")
        self.address = address
        self._max_workers = max_workers
        self.forward_logs = forward_logs
        self.log_level = log_level
        self.worker_plugins = tuple(worker_plugins)
        self.cluster_options = dict(cluster_options or {})
        self.cluster: Any = None
        self.client: Any = None
        self._lock = threading.Lock()
        self._in_flight: dict[Future[Any], Any] = {}
        self._signalled: set[Any] = set()
        self._completions: ThreadPoolExecutor | None = None
        self._shut_down = False

    # -- the Executor contract -----------------------------------------------------------

    def start(self) -> None:
        if self._shut_down:
            raise RuntimeError("dask executor is shut down; create a new one")
        if self.client is not None:
            return
        import dask
        from distributed import Client, LocalCluster

        from routilux_dask.worker import LOG_TOPIC, RoutiluxWorkerPlugin

        if self.address is None:
            options: dict[str, Any] = {
                "n_workers": self._max_workers or os.cpu_count() or 1,
                "threads_per_worker": 1,
                "processes": True,
                # None would still bind the scheduler's HTTP server to 8787; ":0" never
                # collides with another cluster on this machine.
                "dashboard_address": ":0",
                **self.cluster_options,
            }
            # A task that kills its worker must fail, not be retried on the next worker.
            with (
                dask.config.set({"distributed.scheduler.allowed-failures": 0}),
                _main_script_hidden(),
            ):
                self.cluster = LocalCluster(**options)
            self.client = Client(self.cluster, set_as_default=False)
        else:
            self.client = Client(self.address, set_as_default=False)
        # Completing a future applies the activation's effects, which may block on a full
        # slot: never on distributed's single callback thread.
        self._completions = ThreadPoolExecutor(
            max(2, self.max_workers or 2), thread_name_prefix="routilux-dask-done"
        )
        if self.forward_logs:
            self.client.subscribe_topic(LOG_TOPIC, _relog)
        self.client.register_plugin(
            RoutiluxWorkerPlugin(self.forward_logs, self.log_level, self.worker_plugins)
        )

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        if self.client is None:
            self.start()
        future: Future[Any] = Future()
        task = self.client.submit(fn, *args, pure=False)
        with self._lock:
            self._in_flight[future] = task
        task.add_done_callback(lambda done: self._hand_over(done, future))
        return future

    def cancel(self, future: Future[Any], force: bool = False) -> bool:
        """Tell the task's logic (``job_state.cancel_requested``); always False, because a
        Dask task that may have started cannot be stopped (``cancel_running`` is False)."""
        with self._lock:
            task = self._in_flight.get(future)
            if task is None:
                return False
            self._signalled.add(task.key)
        from distributed import Event

        from routilux_dask.worker import cancel_event_name

        try:
            Event(cancel_event_name(task.key), client=self.client).set()
        except Exception as exc:  # the scheduler is gone: the task is lost anyway
            logger.debug("could not signal cancel of dask task {}: {}", task.key, exc)
        return False

    def shutdown(self, wait: bool = True) -> None:
        self._shut_down = True  # a late submit must not start a new cluster
        client, cluster = self.client, self.cluster
        if client is None:
            return
        with self._lock:
            pending = list(self._in_flight)
        if wait:
            for future in pending:
                try:
                    future.exception()
                except BaseException:  # noqa: BLE001 - cancelled: nothing to wait for
                    pass
        else:
            client.cancel(list(self._in_flight.values()))
        if self._completions is not None:
            on_own_thread = threading.current_thread().name.startswith("routilux-dask-done")
            self._completions.shutdown(wait=wait and not on_own_thread)
        client.close()
        if cluster is not None:
            cluster.close()
        self.client = self.cluster = None

    @property
    def max_workers(self) -> int | None:
        if self.address is not None:
            return None
        return self._max_workers or os.cpu_count() or 1

    # -- bridging distributed futures ----------------------------------------------------

    def _hand_over(self, task: Any, future: Future[Any]) -> None:
        completions = self._completions
        try:
            if completions is not None:
                completions.submit(self._transfer, task, future)
                return
        except RuntimeError:
            pass  # shut down: finish it on distributed's callback thread
        self._transfer(task, future)

    def _transfer(self, task: Any, future: Future[Any]) -> None:
        from distributed import Event, KilledWorker

        from routilux_dask.worker import cancel_event_name
        from routilux_kernel.executors.remote import WorkerCrashedError

        if future.done():  # cancelled by its owner meanwhile
            return
        try:
            result = task.result()
        except KilledWorker as exc:
            future.set_exception(
                WorkerCrashedError(f"dask worker {exc.last_worker.address} died ({exc.task})")
            )
        except BaseException as exc:  # noqa: BLE001 - CancelledError too
            if task.cancelled():
                future.cancel()
            else:
                future.set_exception(exc)
        else:
            future.set_result(result)
        finally:
            with self._lock:
                self._in_flight.pop(future, None)
                signalled = task.key in self._signalled
                self._signalled.discard(task.key)
            if signalled and self.client is not None:
                try:  # a cleared event is forgotten by the scheduler
                    Event(cancel_event_name(task.key), client=self.client).clear()
                except Exception:  # noqa: BLE001 - best effort cleanup
                    pass


def _relog(event: tuple[float, dict[str, Any]]) -> None:
    """Re-emit a worker's loguru record in the driver's loguru, with its origin bound."""
    _, record = event
    origin = {"name": record["name"], "function": record["function"], "line": record["line"]}
    # Logic may bind a "worker" key of its own: one value, not a TypeError that drops the record.
    target = logger.bind(**{**record["extra"], "worker": record["worker"]}).patch(
        lambda r: r.update(origin)  # type: ignore[typeddict-item]
    )
    try:
        target.log(record["level"], record["message"])
    except ValueError:  # a custom level the driver does not know
        target.log(record["level_no"], record["message"])
