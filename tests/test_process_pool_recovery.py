"""The process pool under faults of its workers: killed while starting, stopped mid-reply."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import CancelledError
from pathlib import Path
from typing import Any

import pytest

from routilux_kernel import ErrorHandler, ErrorStrategy, Flow, Routine
from routilux_kernel.core.errors import ExecutorError
from routilux_kernel.core.job_state import ExecutionStatus
from routilux_kernel.engine.runtime import Runtime
from routilux_kernel.executors.process.pool import ProcessExecutor

WAIT = 20.0


# -- workers killed while starting ---------------------------------------------------------

KILLED_AT_START = """
import os
import signal
from routilux_kernel import hookimpl

@hookimpl
def worker_setup(worker):
    with open(os.environ["ROUTILUX_KILLED_STARTS"], "a+") as starts:
        starts.seek(0)
        count = len(starts.read())
        starts.write("x")
    if count < 3:
        os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer or an operator would
"""


@pytest.fixture
def killed_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A worker plugin that kills the first three workers while they start."""
    (tmp_path / "killed_at_start.py").write_text(textwrap.dedent(KILLED_AT_START))
    monkeypatch.syspath_prepend(str(tmp_path))
    starts = tmp_path / "starts"
    monkeypatch.setenv("ROUTILUX_KILLED_STARTS", str(starts))
    yield starts


def doubling_flow(handler: ErrorHandler | None) -> Flow:
    def double(slot_data: Any, message: Any, job_state: Any) -> None:
        job_state.shared_data["x"] = slot_data["trigger"][0]["x"] * 2

    routine = Routine()
    routine.add_slot("trigger")
    routine.set_logic(double)
    if handler is not None:
        routine.set_error_handler(handler)
    flow = Flow("doubling")
    flow.add_routine(routine, "double")
    return flow


def test_pool_starts_workers_again_after_three_were_killed_while_starting(killed_at_start):
    runtime = Runtime(
        executor="process",
        executor_options={"max_workers": 1, "worker_plugins": ["killed_at_start"]},
    )
    try:
        retried = runtime.run(
            doubling_flow(ErrorHandler(ErrorStrategy.RETRY, max_retries=2, retry_delay=0.1)),
            {"x": 1},
            timeout=WAIT,
        )
        later = runtime.run(doubling_flow(None), {"x": 5}, timeout=WAIT)
    finally:
        runtime.shutdown()
    assert retried.status == ExecutionStatus.COMPLETED, retried.error
    assert retried.shared_data == {"x": 2}
    (failure,) = [h[3] for h in retried.history if h[2] == "error"]
    assert "3 worker processes in a row were killed while starting" in failure["error"]
    assert "(SIGKILL)" in failure["error"]
    assert later.status == ExecutionStatus.COMPLETED, later.error
    assert later.shared_data == {"x": 10}
    assert killed_at_start.read_text() == "xxxx"  # three killed, one started and reused


def test_a_worker_that_cannot_import_its_plugin_still_fails_fast_with_its_error():
    executor = ProcessExecutor(max_workers=1, worker_plugins=["no_such_module_for_recovery"])
    executor.start()
    try:
        started = time.monotonic()
        with pytest.raises(ExecutorError) as failure:
            executor.submit(os.getpid).result(timeout=WAIT)
        assert time.monotonic() - started < 10  # three starts, no restart delay
        with pytest.raises(ExecutorError, match="in a row failed to start"):
            executor.submit(os.getpid)  # refused at once
    finally:
        executor.shutdown()
    assert "3 worker processes in a row failed to start" in str(failure.value)
    assert "No module named 'no_such_module_for_recovery'" in str(failure.value)


# -- a worker stopped half-way through its reply -------------------------------------------


def reply_then_stop(size: int) -> bytes:
    """Runs in a worker: returns ``size`` bytes, and stops this worker (SIGSTOP) once it is
    writing them, after the message's length went out and before its end."""
    main = threading.main_thread().ident

    def stop_when_replying() -> None:
        while True:
            frame = sys._current_frames().get(main)
            while frame is not None:
                if frame.f_code.co_name == "_send" and len(frame.f_locals.get("buf", b"")) > 1:
                    if len(frame.f_locals["buf"]) >= size:  # the payload, not the header
                        os.kill(os.getpid(), signal.SIGSTOP)
                        return
                frame = frame.f_back
            time.sleep(0.0005)

    threading.Thread(target=stop_when_replying, daemon=True).start()
    return b"r" * size


def is_stopped(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "T"


def test_a_worker_stopped_mid_reply_does_not_stall_the_other_workers():
    executor = ProcessExecutor(max_workers=2)
    executor.start()
    try:
        stuck = executor.submit(reply_then_stop, 32 * 1024 * 1024)
        deadline = time.monotonic() + WAIT
        while not any(is_stopped(pid) for pid in executor.worker_pids):
            assert time.monotonic() < deadline, "the worker never stopped itself"
            time.sleep(0.01)
        (stopped,) = [pid for pid in executor.worker_pids if is_stopped(pid)]
        results = [executor.submit(os.getpid).result(timeout=WAIT) for _ in range(5)]
        assert stopped not in results and len(set(results)) == 1
        assert not stuck.done()  # its reply is half read, and stays so
        assert executor.cancel(stuck, force=True)
        with pytest.raises(CancelledError):
            stuck.result(timeout=WAIT)
    finally:
        executor.shutdown(wait=False)
