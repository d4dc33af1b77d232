"""The built-in thread executor: threads on demand, never fewer than the work needs."""

from __future__ import annotations

import threading

import pytest

from routilux_kernel.executors.thread import ThreadExecutor

WAIT = 10.0


@pytest.mark.parametrize("workers", [1, 4, 16])
def test_a_burst_of_tasks_gets_a_thread_each_up_to_max_workers(workers: int) -> None:
    """Tasks that all wait for each other finish only if each got its own thread."""
    executor = ThreadExecutor(max_workers=workers)
    barrier = threading.Barrier(workers, timeout=WAIT)
    passed: list[int] = []
    try:
        for round_number in range(3):  # later rounds reuse idle threads
            done = threading.Semaphore(0)

            def task(number: int, _done: threading.Semaphore = done) -> None:
                barrier.wait()
                passed.append(number)
                _done.release()

            for n in range(workers):
                executor.dispatch(task, round_number * workers + n)
            for _ in range(workers):
                assert done.acquire(timeout=WAIT), "a task never got a thread"
        assert sorted(passed) == list(range(3 * workers))
    finally:
        executor.shutdown(wait=True)


def test_submit_returns_a_future_and_shutdown_joins_every_thread() -> None:
    executor = ThreadExecutor(max_workers=3)
    futures = [executor.submit(pow, 2, n) for n in range(10)]
    assert [future.result(timeout=WAIT) for future in futures] == [2**n for n in range(10)]
    executor.shutdown(wait=True)
    assert not [t for t in threading.enumerate() if t.name.startswith("routilux-") and t.is_alive()]
    with pytest.raises(RuntimeError, match="shut down"):
        executor.dispatch(print, "late")
