"""The process pool's completion threads: every call runs, in order per thread, a blocked
call never holds back another while the limit allows a thread more, and shutdown drains."""

from __future__ import annotations

import threading

import pytest
from loguru import logger

from routilux_kernel.executors.process.callbacks import CallbackThreads

WAIT = 10.0


def test_a_blocked_call_does_not_hold_back_the_next_while_threads_remain() -> None:
    threads = CallbackThreads(3, "test-callbacks")
    release = threading.Event()
    ran = threading.Event()
    try:
        threads.submit(release.wait, WAIT)  # blocks its thread, as a full slot would
        threads.submit(ran.set)
        assert ran.wait(WAIT)
    finally:
        release.set()
        threads.shutdown()


def test_at_the_limit_calls_wait_for_a_free_thread_and_all_run() -> None:
    threads = CallbackThreads(1, "test-callbacks")
    release = threading.Event()
    done: list[int] = []
    threads.submit(release.wait, WAIT)
    for n in range(5):
        threads.submit(done.append, n)
    assert done == []  # the only thread is blocked
    release.set()
    threads.shutdown(wait=True)  # drains what was submitted first
    assert done == [0, 1, 2, 3, 4]


def test_a_failing_call_is_logged_and_the_thread_goes_on() -> None:
    threads = CallbackThreads(1, "test-callbacks")
    after = threading.Event()
    messages: list[str] = []

    def fail() -> None:
        raise ValueError("boom")

    logger.enable("routilux_kernel")
    sink = logger.add(lambda m: messages.append(str(m)), level="ERROR", format="{message}")
    try:
        threads.submit(fail)
        threads.submit(after.set)
        assert after.wait(WAIT)
        threads.shutdown()
    finally:
        logger.remove(sink)
        logger.disable("routilux_kernel")
    assert any("a completion callback failed" in m and "ValueError: boom" in m for m in messages)


def test_no_call_is_taken_after_shutdown() -> None:
    threads = CallbackThreads(2, "test-callbacks")
    threads.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        threads.submit(print, "late")
