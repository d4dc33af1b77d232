"""Starting worker processes, and what the pool does when they die before they are ready.

Workers are forked from the pool's template process (``template.py``, ``forked.py``): an
interpreter started with ``subprocess`` that imported the kernel and the plugins once. Where
the platform cannot do that, or the template failed, each worker is a fresh interpreter
started with ``subprocess`` (fork + exec). Never ``multiprocessing``: a bare ``fork`` of the
driver is unsafe once it has threads (a runtime always has), and multiprocessing's
``spawn``/``forkserver`` re-run the parent's ``__main__`` script in each worker, which breaks
scripts without an ``if __name__ == "__main__"`` guard.

A worker can die before it says "ready" for two kinds of reasons, told apart by how it
ended:

- it exited on its own (it could not import the package, a worker plugin raised): the
  environment is broken and every new worker will fail the same way, so after
  :data:`MAX_START_FAILURES` in a row the pool fails fast, with the worker's own error;
- it was killed by a signal (the OOM killer, an operator, fault injection): that says
  nothing about the next one, so workers are started again after a growing delay. After
  :data:`MAX_START_FAILURES` such deaths in a row the queued work fails (so no job waits
  without end), but the pool is not given up: later work starts workers again.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

from routilux_kernel.executors.process.forked import WorkerTemplate
from routilux_kernel.executors.process.handles import WorkerHandle
from routilux_kernel.executors.remote import describe_exit, worker_entry_points

#: Workers in a row that may die before saying "ready" until queued work fails.
MAX_START_FAILURES = 3
#: Delay before starting a worker again after the first one killed while starting; it
#: doubles with each further one, up to :data:`RESTART_DELAY_LIMIT` seconds.
FIRST_RESTART_DELAY = 0.05
RESTART_DELAY_LIMIT = 2.0

_BOOT = "from routilux_kernel.executors.process.worker import worker_main; worker_main()"
#: The folder holding the routilux_kernel package, put on a worker's PYTHONPATH.
_PACKAGE_ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
)


def spawn_worker(
    name: str, worker_plugins: Sequence[str], template: WorkerTemplate | None = None
) -> WorkerHandle:
    """Start one worker process (forked by ``template`` if it works) and send it what it
    needs to set itself up."""
    parent_end, child_end = socket.socketpair()
    if template is not None and template.failure is None:
        try:
            forked = template.fork(name, child_end)
        except OSError:
            pass  # the template is gone: a fresh interpreter it is
        else:
            child_end.close()
            return _introduce(WorkerHandle(name, forked, parent_end), name, worker_plugins)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH", "")) if p)
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
    return _introduce(WorkerHandle(name, process, parent_end), name, worker_plugins)


def _introduce(worker: WorkerHandle, name: str, worker_plugins: Sequence[str]) -> WorkerHandle:
    worker.send(("init", list(sys.path), name, tuple(worker_plugins), worker_entry_points()))
    return worker


class WorkerStarts:
    """Counts workers that died before they were ready, and decides what follows."""

    def __init__(self) -> None:
        self._failed_in_a_row = 0
        self._killed_in_a_row = 0
        #: ``time.monotonic()`` before which no worker is started.
        self.not_before = 0.0

    def ready(self) -> None:
        self._failed_in_a_row = self._killed_in_a_row = 0
        self.not_before = 0.0

    def may_start_now(self) -> bool:
        return time.monotonic() >= self.not_before

    def died_before_ready(
        self, worker: WorkerHandle, exitcode: int | None
    ) -> tuple[str | None, bool]:
        """Record it; returns why queued work fails now (None: it stays queued) and whether
        the pool is broken for good."""
        # None: its template process died too, so nobody knows; a restart may well work.
        killed = (exitcode is None or exitcode < 0) and not worker.start_error
        if not killed:
            self._failed_in_a_row += 1
            if self._failed_in_a_row < MAX_START_FAILURES:
                return None, False
            error = worker.start_error.strip() or "no error output"
            return (
                f"process executor: {MAX_START_FAILURES} worker processes in a row failed to "
                f"start; the last {describe_exit(exitcode)}: {error}",
                True,
            )
        self._killed_in_a_row += 1
        delay = min(FIRST_RESTART_DELAY * 2 ** (self._killed_in_a_row - 1), RESTART_DELAY_LIMIT)
        self.not_before = time.monotonic() + delay
        if self._killed_in_a_row % MAX_START_FAILURES:
            return None, False
        return (
            f"process executor: {self._killed_in_a_row} worker processes in a row were killed "
            f"while starting (the last {describe_exit(exitcode)}); new workers are started "
            f"again for later work, the next in {delay:.2f}s",
            False,
        )
