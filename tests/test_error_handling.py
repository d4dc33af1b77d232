"""Error strategies STOP, CONTINUE, SKIP and RETRY, and which handler applies."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from routilux_kernel import ErrorHandler, ErrorStrategy, Flow, Routine
from routilux_kernel.activation_policies import batch_size

WAIT = 10.0


def source_and_worker(make_routine, items: int, fail_on: set[int], calls: list[Any]) -> Flow:
    """``source`` emits ``items`` numbers; ``worker`` takes one per activation.

    The worker starts only once every item is queued, so what a failure leaves behind
    is known exactly.
    """
    flow = Flow("errors")
    all_queued = threading.Event()
    source = make_routine(["trigger"], ["out"])

    def emit_all(slot_data, message, job_state):
        for i in range(items):
            source.emit("out", i=i)
        all_queued.set()

    source.set_logic(emit_all)

    def work(slot_data, message, job_state):
        assert all_queued.wait(WAIT)
        i = slot_data["input"][0]["i"]
        calls.append(i)
        if i in fail_on:
            raise ValueError(f"item {i} is bad")
        job_state.shared_log.append(i)

    flow.add_routine(source, "source")
    flow.add_routine(make_routine(["input"], [], work, policy=batch_size(1)), "worker")
    flow.connect("source", "out", "worker", "input")
    return flow


# -- STOP / CONTINUE / SKIP ------------------------------------------------------------------


def test_stop_is_the_default_and_schedules_nothing_more(runtime, make_routine) -> None:
    calls: list[int] = []
    flow = source_and_worker(make_routine, items=5, fail_on={0}, calls=calls)
    state = runtime.run(flow, timeout=WAIT)
    assert state.status == "failed"
    assert isinstance(state.error, ValueError) and str(state.error) == "item 0 is bad"
    assert state.error_routine_id == "worker"
    assert calls == [0]
    assert state.unconsumed == {"worker": {"input": [{"i": i} for i in range(1, 5)]}}
    assert [(e["routine_id"], e["action"]) for e in state.errors] == [("worker", "stop")]


def test_continue_records_the_error_and_goes_on(runtime, make_routine) -> None:
    calls: list[int] = []
    flow = source_and_worker(make_routine, items=5, fail_on={1, 3}, calls=calls)
    flow.routines["worker"].set_error_handler(ErrorHandler(ErrorStrategy.CONTINUE))
    state = runtime.run(flow, timeout=WAIT)
    assert state.status == "completed"
    assert state.error is None
    assert calls == [0, 1, 2, 3, 4]
    assert state.shared_log == [0, 2, 4]
    assert [(e["routine_id"], e["error_type"], e["error"], e["action"]) for e in state.errors] == [
        ("worker", "ValueError", "item 1 is bad", "continue"),
        ("worker", "ValueError", "item 3 is bad", "continue"),
    ]


def test_skip_takes_the_routine_out_of_the_job(runtime, make_routine) -> None:
    calls: list[int] = []
    flow = source_and_worker(make_routine, items=5, fail_on={0}, calls=calls)
    flow.routines["worker"].set_error_handler(ErrorHandler(ErrorStrategy.SKIP))
    state = runtime.run(flow, timeout=WAIT)
    assert state.status == "completed"
    assert calls == [0]
    assert state.skipped_routines == {"worker"}
    assert state.unconsumed == {"worker": {"input": [{"i": i} for i in range(1, 5)]}}
    assert [e["action"] for e in state.errors] == ["skip"]


def test_skip_leaves_other_routines_running(runtime, make_routine) -> None:
    flow = Flow("skip_one")
    source = make_routine(["trigger"], ["out"])
    source.set_logic(lambda d, m, s: [source.emit("out", i=i) for i in range(3)])

    def broken(slot_data, message, job_state):
        raise RuntimeError("broken")

    def healthy(slot_data, message, job_state):
        job_state.shared_log.extend(item["i"] for item in slot_data["input"])

    bad = make_routine(["input"], [], broken, policy=batch_size(1))
    bad.set_error_handler(ErrorHandler(ErrorStrategy.SKIP))
    flow.add_routine(source, "source")
    flow.add_routine(bad, "bad")
    flow.add_routine(make_routine(["input"], [], healthy), "good")
    flow.connect("source", "out", "bad", "input")
    flow.connect("source", "out", "good", "input")
    state = runtime.run(flow, timeout=WAIT)
    assert state.status == "completed"
    assert sorted(state.shared_log) == [0, 1, 2]
    assert state.skipped_routines == {"bad"}


# -- which handler applies -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("routine_level", "flow_level", "runtime_level", "expected"),
    [
        (ErrorStrategy.CONTINUE, ErrorStrategy.STOP, ErrorStrategy.STOP, "completed"),
        (ErrorStrategy.STOP, ErrorStrategy.CONTINUE, ErrorStrategy.CONTINUE, "failed"),
        (None, ErrorStrategy.CONTINUE, ErrorStrategy.STOP, "completed"),
        (None, ErrorStrategy.STOP, ErrorStrategy.CONTINUE, "failed"),
        (None, None, ErrorStrategy.CONTINUE, "completed"),
        (None, None, None, "failed"),
    ],
)
def test_handler_resolution_is_routine_then_flow_then_runtime(
    make_runtime, make_routine, routine_level, flow_level, runtime_level, expected
) -> None:
    runtime = make_runtime(
        thread_pool_size=2,
        default_error_handler=ErrorHandler(runtime_level) if runtime_level else None,
    )
    calls: list[int] = []
    flow = source_and_worker(make_routine, items=3, fail_on={0}, calls=calls)
    if routine_level:
        flow.routines["worker"].set_error_handler(ErrorHandler(routine_level))
    if flow_level:
        flow.set_error_handler(ErrorHandler(flow_level))
    state = runtime.run(flow, timeout=WAIT)
    assert state.status == expected
    assert calls == ([0, 1, 2] if expected == "completed" else [0])


def test_overridden_get_error_handler_is_used(runtime) -> None:
    class Tolerant(Routine):
        def get_error_handler(self) -> ErrorHandler:
            return ErrorHandler(strategy=ErrorStrategy.CONTINUE)

    flow = Flow("override")
    routine = Tolerant()
    routine.add_slot("trigger")

    def fail(slot_data, message, job_state):
        raise OSError("flaky")

    routine.set_logic(fail)
    flow.add_routine(routine, "tolerant")
    state = runtime.run(flow, timeout=WAIT)
    assert state.status == "completed"
    assert state.errors[0]["error_type"] == "OSError"


def test_strategy_names_are_accepted_as_strings() -> None:
    assert ErrorHandler("Retry").strategy is ErrorStrategy.RETRY


# ErrorHandler(...) in code has the bounds a flow file has: what would leave a job waiting
# for ever (inf, an overflowing backoff) or retrying at once (NaN) is refused on the spot.
@pytest.mark.parametrize(
    ("numbers", "message"),
    [
        ({"retry_delay": -1}, "retry_delay expected a number of seconds from 0 to 86400, got -1"),
        (
            {"retry_delay": float("inf")},
            "retry_delay expected a number of seconds from 0 to 86400, got inf",
        ),
        (
            {"retry_delay": float("nan")},
            "retry_delay expected a number of seconds from 0 to 86400, got nan",
        ),
        (
            {"retry_delay": 86_401},
            "retry_delay expected a number of seconds from 0 to 86400, got 86401",
        ),
        ({"retry_backoff": 1e308}, "retry_backoff expected a number from 0 to 1000, got 1e+308"),
        ({"retry_backoff": float("nan")}, "retry_backoff expected a number from 0 to 1000"),
        ({"max_retries": -1}, "max_retries expected an int from 0 to 1000, got -1"),
        ({"max_retries": 1001}, "max_retries expected an int from 0 to 1000, got 1001"),
        (
            {"max_retries": 10**5000},  # its repr alone would raise
            "max_retries expected an int from 0 to 1000, got an int of about 5001 digits",
        ),
        (
            {"max_retries": 40, "retry_delay": 1, "retry_backoff": 2},
            "the last retry would wait retry_delay * retry_backoff ** (max_retries - 1) = "
            "1 * 2 ** 39, more than 86400 seconds (one day)",
        ),
    ],
)
def test_error_handler_in_code_refuses_unbounded_retry_numbers(
    numbers: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError) as caught:
        ErrorHandler(ErrorStrategy.RETRY, **numbers)
    assert str(caught.value).startswith(f"ErrorHandler: {message}")


@pytest.mark.parametrize(
    ("numbers", "message"),
    [
        ({"max_retries": 2.5}, "max_retries expected an int from 0 to 1000, got float 2.5"),
        ({"max_retries": True}, "max_retries expected an int from 0 to 1000, got bool True"),
        ({"retry_delay": "1"}, "retry_delay expected a number of seconds from 0 to 86400, got str"),
    ],
)
def test_error_handler_in_code_refuses_retry_numbers_of_the_wrong_type(
    numbers: dict[str, Any], message: str
) -> None:
    with pytest.raises(TypeError) as caught:
        ErrorHandler(ErrorStrategy.RETRY, **numbers)
    assert str(caught.value).startswith(f"ErrorHandler: {message}")


def test_error_handler_accepts_the_bounds_themselves(runtime, make_routine) -> None:
    # a day-long last wait is allowed, and so are 1000 retries with no delay: the bounds
    # refuse only what never ends
    day = ErrorHandler(ErrorStrategy.RETRY, max_retries=1, retry_delay=86_400)
    assert day.retry_delay == 86_400
    handler = ErrorHandler(ErrorStrategy.RETRY, max_retries=1000, retry_delay=0, retry_backoff=1000)
    attempts: list[int] = []

    def flaky(slot_data: Any, message: Any, job_state: Any) -> None:
        attempts.append(1)
        if len(attempts) < 5:
            raise ConnectionError("not yet")

    flow = Flow()
    worker = make_routine(["trigger"], [], flaky)
    worker.set_error_handler(handler)
    flow.add_routine(worker, "worker")
    state = runtime.run(flow, timeout=WAIT)
    assert (state.status, len(attempts)) == ("completed", 5)


def test_unknown_strategy_name_fails_the_job_saying_why(runtime, make_routine) -> None:
    calls: list[int] = []
    flow = source_and_worker(make_routine, items=2, fail_on={0}, calls=calls)
    flow.routines["worker"].set_error_handler(ErrorHandler("shrug"))
    state = runtime.run(flow, timeout=WAIT)
    assert state.status == "failed"
    assert "unknown error strategy 'shrug'" in state.errors[0]["reason"]


# -- RETRY -----------------------------------------------------------------------------------


def retry_flow(
    make_routine,
    fail_times: int,
    handler: ErrorHandler,
    attempts: list[Any],
    attempted: threading.Event | None = None,
) -> Flow:
    flow = Flow("retry")

    def flaky(slot_data, message, job_state):
        attempts.append((time.monotonic(), slot_data))
        if attempted is not None:
            attempted.set()
        if len(attempts) <= fail_times:
            raise ConnectionError(f"attempt {len(attempts)} failed")
        job_state.shared_log.append("ok")

    routine = make_routine(["trigger"], [], flaky)
    routine.set_error_handler(handler)
    flow.add_routine(routine, "flaky")
    return flow


def test_retry_reruns_the_same_activation_with_growing_delays(runtime, make_routine) -> None:
    attempts: list[Any] = []
    handler = ErrorHandler(ErrorStrategy.RETRY, max_retries=3, retry_delay=0.04, retry_backoff=2.0)
    state = runtime.run(retry_flow(make_routine, 3, handler, attempts), {"order": 7}, timeout=WAIT)
    assert state.status == "completed", state.errors
    assert state.shared_log == ["ok"]
    assert len(attempts) == 4
    assert all(data == {"trigger": [{"order": 7}]} for _, data in attempts)
    gaps = [later[0] - earlier[0] for earlier, later in zip(attempts, attempts[1:], strict=False)]
    for n, gap in enumerate(gaps):
        expected = 0.04 * 2.0**n
        assert expected * 0.9 <= gap <= expected + 0.1, (n, gaps)
    assert gaps[0] < gaps[1] < gaps[2]
    assert [entry[2] for entry in state.history].count("retry") == 3
    assert state.errors == []


def test_retry_gives_up_after_max_retries_and_fails_the_job(runtime, make_routine) -> None:
    attempts: list[Any] = []
    handler = ErrorHandler(ErrorStrategy.RETRY, max_retries=2, retry_delay=0.01)
    state = runtime.run(retry_flow(make_routine, 99, handler, attempts), timeout=WAIT)
    assert state.status == "failed"
    assert len(attempts) == 3
    assert isinstance(state.error, ConnectionError) and str(state.error) == "attempt 3 failed"
    assert state.errors[-1]["reason"] == "gave up after 2 retries"
    assert state.errors[-1]["attempt"] == 2


def test_non_retryable_exception_stops_at_once(runtime, make_routine) -> None:
    attempts: list[Any] = []
    handler = ErrorHandler(
        ErrorStrategy.RETRY, max_retries=5, retry_delay=0.01, retryable_exceptions=(TimeoutError,)
    )
    state = runtime.run(retry_flow(make_routine, 99, handler, attempts), timeout=WAIT)
    assert state.status == "failed"
    assert len(attempts) == 1
    assert state.errors[0]["reason"] == "not a retryable exception"


def test_a_pending_retry_keeps_the_job_open(runtime, make_routine) -> None:
    attempts: list[Any] = []
    handler = ErrorHandler(ErrorStrategy.RETRY, max_retries=1, retry_delay=0.2)
    state = runtime.exec(retry_flow(make_routine, 1, handler, attempts))
    assert state.wait(0.1) is False
    assert state.status == "running" and len(attempts) == 1
    assert state.wait(WAIT)
    assert state.status == "completed" and len(attempts) == 2


def test_waiting_retry_does_not_hold_a_worker_thread(make_runtime, make_routine) -> None:
    runtime = make_runtime(thread_pool_size=1)
    attempts: list[Any] = []
    handler = ErrorHandler(ErrorStrategy.RETRY, max_retries=1, retry_delay=0.3)
    retrying = runtime.exec(retry_flow(make_routine, 1, handler, attempts))
    other = Flow("other")
    other.add_routine(make_routine(logic=lambda *a: None), "noop")
    started = time.monotonic()
    quick = runtime.run(other, timeout=WAIT)
    assert quick.status == "completed"
    assert time.monotonic() - started < 0.2  # ran while the retry was waiting, on the only thread
    assert retrying.wait(WAIT) and retrying.status == "completed"


def test_cancelling_during_a_retry_wait_stops_the_retry(runtime, make_routine) -> None:
    attempts: list[Any] = []
    attempted = threading.Event()
    handler = ErrorHandler(ErrorStrategy.RETRY, max_retries=3, retry_delay=0.1)
    state = runtime.exec(retry_flow(make_routine, 99, handler, attempts, attempted))
    assert attempted.wait(WAIT)
    assert runtime.cancel_job(state.job_id)
    assert state.status == "cancelled"
    # a later retry on the same timer fires after the cancelled one would have
    later: list[Any] = []
    slower = ErrorHandler(ErrorStrategy.RETRY, max_retries=1, retry_delay=0.2)
    witness = runtime.run(retry_flow(make_routine, 1, slower, later), timeout=WAIT)
    assert witness.status == "completed" and len(later) == 2
    assert len(attempts) == 1


def test_error_handler_to_dict_keeps_numbers_that_differ_from_the_defaults() -> None:
    assert ErrorHandler("stop").to_dict() == {"strategy": "stop"}
    assert ErrorHandler("circuit", max_retries=7).to_dict() == {
        "strategy": "circuit",
        "max_retries": 7,
    }
    assert ErrorHandler(ErrorStrategy.RETRY).to_dict() == {
        "strategy": "retry",
        "max_retries": 3,
        "retry_delay": 1.0,
        "retry_backoff": 2.0,
    }


def test_an_exception_whose_str_fails_is_still_handled(runtime, make_routine) -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no text")

    def fail(slot_data, message, job_state):
        raise Unprintable()

    flow = Flow("unprintable")
    routine = make_routine(["trigger"], [], fail)
    routine.set_error_handler(ErrorHandler(ErrorStrategy.CONTINUE))
    flow.add_routine(routine, "bad")
    state = runtime.run(flow, timeout=WAIT)
    assert state.status == "completed"
    assert state.errors[0]["error_type"] == "Unprintable"
    assert "str() of the exception raised RuntimeError" in state.errors[0]["error"]
