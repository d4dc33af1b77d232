"""A routilux 0.10 program, imports renamed, runs: the API its users rely on (issue 11).

Each test is written the way a routilux user wrote code: ``set_logic`` with chaining,
``emit(..., job_state=...)``, policies by routilux's keyword names, ``get_state`` helpers,
``job_state.error`` read as text, ``exec(name, job_state)``, ``validate()`` as a list.
"""

from __future__ import annotations

import threading
import time

import pytest

from routilux_kernel import (
    ErrorHandler,
    ErrorStrategy,
    EventDataError,
    Flow,
    FlowNotFoundError,
    JobState,
    NoJobContextError,
    RoutiluxError,
    Routine,
)
from routilux_kernel.activation_policies import (
    batch_size_policy,
    custom_policy,
    immediate_policy,
    time_interval_policy,
)
from routilux_kernel.core.job_state import HISTORY_LIMIT
from routilux_kernel.core.policies import SlotQueues
from routilux_kernel.monitoring.flow_registry import FlowRegistry
from routilux_kernel.runtime import Runtime

WAIT = 10.0


class Source(Routine):
    """routilux style: the trigger slot, an event with declared params, logic set in __init__."""

    def __init__(self) -> None:
        super().__init__()
        self.trigger = self.add_slot("trigger")
        self.output = self.add_event("output", ["value"])
        self.set_logic(self._run).set_activation_policy(immediate_policy())

    def _run(self, slot_data, policy_message, job_state) -> None:
        for value in slot_data["trigger"][0].get("values", [1]):
            self.emit("output", job_state=job_state, value=value)


class Recorder(Routine):
    """Keeps what it received in its routine state, through routilux's helpers."""

    def __init__(self) -> None:
        super().__init__()
        self.input = self.add_slot("input")
        self.set_logic(self._run)

    def _run(self, slot_data, policy_message, job_state) -> None:
        seen = self.get_state(job_state, "seen", [])
        self.set_state(job_state, "seen", seen + slot_data["input"])
        self.update_state(job_state, {"messages": self.get_state(job_state, "messages", 0) + 1})


def pipeline(flow_id: str = "migrated") -> tuple[Flow, Source, Recorder]:
    flow = Flow(flow_id=flow_id)
    source, recorder = Source(), Recorder()
    flow.add_routine(source, "source")
    flow.add_routine(recorder, "recorder")
    flow.connect("source", "output", "recorder", "input")
    return flow, source, recorder


# -- 1. emit(event, runtime=..., job_state=..., **data) -----------------------------------


def test_emit_with_runtime_and_job_state_sends_only_the_data() -> None:
    flow = Flow(flow_id="emit_keywords")
    source = Routine()
    source.add_slot("trigger")
    source.add_event("output")  # no declared params: any keys are data
    recorder = Recorder()
    with Runtime(thread_pool_size=2) as runtime:
        source.set_logic(
            lambda slot_data, message, job_state: source.emit(
                "output", runtime=runtime, job_state=job_state, value=7
            )
        )
        flow.add_routine(source, "source")
        flow.add_routine(recorder, "recorder")
        flow.connect("source", "output", "recorder", "input")
        job = runtime.run(flow, timeout=WAIT)
    assert job.status == "completed", job.error
    assert recorder.get_state(job, "seen") == [{"value": 7}]


def test_emit_from_a_helper_thread_with_an_explicit_job_state_routes_into_that_job() -> None:
    flow, source, recorder = pipeline("helper_thread")

    def fan_out(slot_data, policy_message, job_state) -> None:
        # the helper thread has no activation context: only job_state says which job
        helpers = [
            threading.Thread(
                target=source.emit, args=("output",), kwargs={"job_state": job_state, "value": n}
            )
            for n in range(3)
        ]
        for helper in helpers:
            helper.start()
        for helper in helpers:
            helper.join()

    source.set_logic(fan_out)
    with Runtime(thread_pool_size=2) as runtime:
        jobs = [runtime.exec(flow) for _ in range(3)]
        assert runtime.wait_until_all_jobs_finished(timeout=WAIT)
    for job in jobs:
        assert job.status == "completed", job.error
        assert sorted(item["value"] for item in recorder.get_state(job, "seen")) == [0, 1, 2]


def test_emit_with_the_runtime_of_another_job_fails_in_the_emitting_routine() -> None:
    flow, source, _ = pipeline("wrong_runtime")
    other = Runtime(thread_pool_size=1)
    try:
        source.set_logic(
            lambda slot_data, message, job_state: source.emit(
                "output", runtime=other, job_state=job_state, value=1
            )
        )
        with Runtime(thread_pool_size=1) as runtime:
            job = runtime.run(flow, timeout=WAIT)
    finally:
        other.shutdown()
    assert job.status == "failed" and job.error_routine_id == "source"
    assert "runs in another Runtime than the one given" in job.error


def test_emit_naming_a_finished_job_says_it_is_not_running() -> None:
    flow, source, _ = pipeline("finished")
    source.set_logic(lambda *args: None)
    with Runtime(thread_pool_size=1) as runtime:
        job = runtime.run(flow, timeout=WAIT)
    with pytest.raises(NoJobContextError, match=rf"job {job.job_id} is not running"):
        source.emit("output", job_state=job, value=1)


# -- declared event params are enforced ------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "keys", "problems"),
    [
        ({"value": 1, "extra": 2}, "['extra', 'value']", "unknown: ['extra']"),
        ({"valu": 1}, "['valu']", "missing: ['value'], unknown: ['valu']"),
        ({}, "[]", "missing: ['value']"),
    ],
    ids=["unknown", "misspelt", "missing"],
)
def test_emit_with_an_undeclared_or_missing_key_fails_naming_event_keys_and_params(
    sent, keys, problems
) -> None:
    flow, source, recorder = pipeline("declared")
    source.set_logic(lambda slot_data, message, job_state: source.emit("output", **sent))
    with Runtime(thread_pool_size=1) as runtime:
        job = runtime.run(flow, timeout=WAIT)
    assert job.status == "failed" and job.error_routine_id == "source"
    assert isinstance(job.exception, EventDataError)
    assert job.error == (
        f"Source.emit('output') sent keys {keys}, but the event declares params ['value']; "
        f"{problems}. Send the declared keys, or declare the event with the keys it carries"
    )
    assert recorder.get_state(job) is None  # nothing was delivered


def test_emit_may_leave_an_optional_param_out() -> None:
    flow = Flow(flow_id="partial")
    source = Routine()
    source.add_slot("trigger")
    source.add_event("output", ["value"], optional=["note"])
    source.set_logic(lambda slot_data, message, job_state: source.emit("output", value=1))
    recorder = Recorder()
    flow.add_routine(source, "source")
    flow.add_routine(recorder, "recorder")
    flow.connect("source", "output", "recorder", "input")
    with Runtime(thread_pool_size=1) as runtime:
        job = runtime.run(flow, timeout=WAIT)
    assert job.status == "completed", job.error
    assert recorder.get_state(job, "seen") == [{"value": 1}]


# -- 2. custom_policy with a bool check --------------------------------------------------------


def test_custom_policy_with_a_bool_check_runs_with_all_new_data() -> None:
    flow, source, recorder = pipeline("bool_policy")

    def three_waiting(slots, job_state) -> bool:  # routilux's check-function contract
        return slots["input"].get_unconsumed_count() >= 3

    recorder.set_activation_policy(custom_policy(three_waiting))
    with Runtime(thread_pool_size=2) as runtime:
        job = runtime.run(flow, {"values": [1, 2, 3, 4]}, timeout=WAIT)
    assert job.status == "completed", job.error
    assert recorder.get_state(job, "messages") == 1
    assert [item["value"] for item in recorder.get_state(job, "seen")] == [1, 2, 3]
    assert job.unconsumed == {"recorder": {"input": [{"value": 4}]}}


def test_custom_policy_keeps_taking_the_decision_tuple() -> None:
    flow, source, recorder = pipeline("tuple_policy")

    def pairs(slots: SlotQueues, job_state):
        if slots.count("input") >= 2:
            return True, {"input": slots.take("input", 2)}, {"reason": "pair"}
        return False, {}, None

    recorder.set_activation_policy(custom_policy(pairs))
    with Runtime(thread_pool_size=2) as runtime:
        job = runtime.run(flow, {"values": [1, 2, 3, 4]}, timeout=WAIT)
    assert job.status == "completed", job.error
    assert recorder.get_state(job, "messages") == 2


# -- 3. policy keyword names and what a non-activation returns ---------------------------------


def test_policies_take_routilux_keyword_names() -> None:
    assert batch_size_policy(min_batch_size=3).size == 3
    assert time_interval_policy(min_interval_seconds=0.5).seconds == 0.5
    with pytest.raises(TypeError, match="takes size or min_batch_size, not both"):
        batch_size_policy(2, min_batch_size=3)
    with pytest.raises(TypeError, match=r"needs seconds \(or min_interval_seconds"):
        time_interval_policy()


@pytest.mark.parametrize(
    "policy",
    [immediate_policy(), batch_size_policy(min_batch_size=2), time_interval_policy(60)],
    ids=["immediate", "batch_size", "time_interval"],
)
def test_a_non_activation_returns_an_empty_data_slice(policy) -> None:
    slots = SlotQueues(("input",))
    if policy.name == "time_interval":  # it ran a moment ago: the next item must wait
        slots.state["last_activation"] = time.monotonic()
        slots._append("input", {"x": 1})
    elif policy.name == "batch_size":
        slots._append("input", {"x": 1})
    assert policy(slots, None) == (False, {}, None)


def test_batch_size_policy_by_routilux_name_runs_batches() -> None:
    flow, source, recorder = pipeline("batches")
    recorder.set_activation_policy(batch_size_policy(min_batch_size=2))
    with Runtime(thread_pool_size=2) as runtime:
        job = runtime.run(flow, {"values": [1, 2, 3, 4]}, timeout=WAIT)
    assert job.status == "completed", job.error
    assert recorder.get_state(job, "messages") == 2


# -- 4. routine helpers ----------------------------------------------------------------------


def test_setters_chain_and_config_is_callable() -> None:
    routine = Routine()
    routine.set_config(name="loader", retries=2)
    chained = (
        routine.set_logic(lambda *args: None)
        .set_activation_policy(immediate_policy())
        .set_error_handler(ErrorHandler(ErrorStrategy.CONTINUE))
    )
    assert chained is routine
    assert routine.config() == {"name": "loader", "retries": 2}
    assert routine.config["name"] == "loader"  # still readable as a dict
    slot = routine.add_slot("input")
    event = routine.add_event("done", ["x"])
    assert routine.get_slot("input") is slot and routine.get_slot("nope") is None
    assert routine.get_event("done") is event and routine.get_event("nope") is None


def test_get_state_works_after_the_job_and_fails_clearly_for_a_foreign_routine() -> None:
    flow, source, recorder = pipeline("state_after")
    with Runtime(thread_pool_size=1) as runtime:
        job = runtime.run(flow, {"values": [5]}, timeout=WAIT)
    assert recorder.get_state(job) == {"seen": [{"value": 5}], "messages": 1}
    assert recorder.get_state(job, "missing", "default") == "default"
    with pytest.raises(RoutiluxError, match="not part of its flow 'state_after'"):
        Recorder().get_state(job, "seen")


def test_set_as_optional_lets_the_job_go_on() -> None:
    flow, source, recorder = pipeline("optional")
    recorder.set_logic(lambda *args: 1 / 0)
    recorder.set_as_optional()
    with Runtime(thread_pool_size=1) as runtime:
        job = runtime.run(flow, {"values": [1]}, timeout=WAIT)
    assert job.status == "completed"
    assert [entry["action"] for entry in job.errors] == ["continue"]
    assert job.get_routine_status("recorder") == "failed"


def test_set_as_optional_with_skip_takes_the_routine_out() -> None:
    flow, source, recorder = pipeline("optional_skip")
    recorder.set_logic(lambda *args: 1 / 0).set_as_optional(strategy=ErrorStrategy.SKIP)
    with Runtime(thread_pool_size=1) as runtime:
        job = runtime.run(flow, {"values": [1]}, timeout=WAIT)
    assert job.status == "completed" and job.skipped_routines == {"recorder"}
    assert job.get_routine_status("recorder") == "skipped"


def test_set_as_critical_retries_then_fails_the_job() -> None:
    flow, source, recorder = pipeline("critical")
    recorder.set_logic(lambda *args: 1 / 0)
    recorder.set_as_critical(max_retries=2, retry_delay=0.001, retry_backoff=1.0)
    handler = recorder.get_error_handler()
    assert handler.is_critical and handler.strategy == ErrorStrategy.RETRY
    with Runtime(thread_pool_size=1) as runtime:
        job = runtime.run(flow, {"values": [1]}, timeout=WAIT)
    assert job.status == "failed" and "division by zero" in job.error
    outcomes = [(r.outcome, r.attempt) for r in job.get_execution_history("recorder")]
    assert outcomes == [("retried", 0), ("retried", 1), ("failed", 2)]


def test_a_critical_handler_fails_the_job_even_with_continue() -> None:
    flow, source, recorder = pipeline("critical_continue")
    recorder.set_logic(lambda *args: 1 / 0)
    recorder.set_error_handler(ErrorHandler(strategy=ErrorStrategy.CONTINUE, is_critical=True))
    with Runtime(thread_pool_size=1) as runtime:
        job = runtime.run(flow, {"values": [1]}, timeout=WAIT)
    assert job.status == "failed"
    assert job.errors[-1]["reason"] == "the routine is critical (is_critical=True)"


# -- 5. JobState ---------------------------------------------------------------------------


def test_shared_data_and_log_helpers_and_timestamps() -> None:
    flow, source, recorder = pipeline("shared")

    def tally(slot_data, policy_message, job_state) -> None:
        total = job_state.get_shared_data("total", 0)
        job_state.update_shared_data("total", total + len(slot_data["input"]))
        job_state.append_to_shared_log({"batch": len(slot_data["input"])})

    recorder.set_logic(tally)
    with Runtime(thread_pool_size=1) as runtime:
        job = runtime.exec(flow, {"values": [1, 2]})
        assert job.wait_for_completion(timeout=WAIT) is True
    assert job.get_shared_data("total") == job.shared_data["total"] == 2
    log = job.get_shared_log()
    assert sum(entry["batch"] for entry in log) == 2
    log.append("not in the job")  # a copy
    assert len(job.get_shared_log()) == len(log) - 1
    assert job.completed_at == job.finished_at is not None
    assert job.created_at <= job.updated_at and job.finished_at <= job.updated_at


def test_execution_history_records_every_activation() -> None:
    flow, source, recorder = pipeline("history")
    with Runtime(thread_pool_size=1) as runtime:
        job = runtime.run(flow, {"values": [1]}, timeout=WAIT)
    records = job.get_execution_history()
    assert [(r.routine_id, r.outcome, r.attempt) for r in records] == [
        ("source", "completed", 0),
        ("recorder", "completed", 0),
    ]
    assert all(job.started_at <= r.started_at <= r.finished_at <= job.finished_at for r in records)
    assert job.get_execution_history("recorder") == records[1:]
    assert job.get_routine_status("source") == "completed"
    assert job.to_dict()["execution_history"][0]["routine_id"] == "source"
    # routilux's own call: record_execution(routine_id, event_name, data)
    manual = job.record_execution("source", "audit", {"by": "test"})
    assert manual.event_name == "audit" and manual.data == {"by": "test"}
    assert job.execution_history[-1] is manual


def test_execution_history_is_bounded() -> None:
    job = JobState("bounded")
    for n in range(HISTORY_LIMIT * 3):
        job.record_execution("r", "completed", {"n": n})
        assert len(job.execution_history) == min(n + 1, HISTORY_LIMIT)
    assert job.execution_history[0].data == {"n": HISTORY_LIMIT * 2}
    assert len(job._executions) <= HISTORY_LIMIT * 5 // 4  # memory stays bounded too


def test_error_reads_as_text_and_keeps_the_exception() -> None:
    flow, source, recorder = pipeline("error_text")

    def boom(*args) -> None:
        raise ValueError("boom at item 3")

    recorder.set_logic(boom)
    with Runtime(thread_pool_size=1) as runtime:
        job = runtime.run(flow, {"values": [1]}, timeout=WAIT)
    assert "boom" in job.error and job.error == "boom at item 3"
    assert isinstance(job.exception, ValueError) and job.error.exception is job.exception
    assert isinstance(job.error, ValueError)  # code that treated it as the exception still works
    assert job.get_routine_status("recorder") == "failed"
    assert job.to_dict()["error"] == "ValueError: boom at item 3"


# -- 6. exec, validate, unknown flow, thread_pool_size -----------------------------------------


def test_exec_with_a_job_state_given_positionally_resumes_it() -> None:
    flow, source, recorder = pipeline("resume")
    FlowRegistry.get_instance().register_by_name("resume", flow)
    saved = JobState.from_dict(
        {"flow_id": "resume", "unconsumed": {"recorder": {"input": [{"value": 9}]}}}
    )
    with Runtime(thread_pool_size=1) as runtime:
        job = runtime.exec("resume", saved)
        assert job is saved and job.wait(WAIT)
        with pytest.raises(TypeError, match="pass it once, as job_state="):
            runtime.exec("resume", saved, job_state=saved)
    assert job.status == "completed", job.error
    assert recorder.get_state(job, "seen") == [{"value": 9}]
    assert job.get_routine_status("source") is None  # the entry was not triggered again


def test_validate_returns_the_problems() -> None:
    flow, source, recorder = pipeline("valid")
    assert flow.validate() == []
    broken = Flow(flow_id="broken")
    broken.add_routine(Routine(), "empty")
    assert broken.validate() == [
        "flow 'broken' has no entry routine: no routine has a 'trigger' slot that no "
        "connection feeds; add one or pass entry_routine_id to exec",
        "flow 'broken': routine 'empty' (Routine) has no logic: call set_logic() or override "
        "logic()",
    ]


def test_an_unknown_flow_is_a_lookup_error_and_a_value_error() -> None:
    with Runtime(thread_pool_size=1) as runtime:
        with pytest.raises(ValueError, match="no_such_flow") as info:
            runtime.exec("no_such_flow")
    assert isinstance(info.value, LookupError) and isinstance(info.value, FlowNotFoundError)


def test_thread_pool_size_reports_the_real_default() -> None:
    import os

    with Runtime() as runtime:
        assert runtime.thread_pool_size == min(32, (os.cpu_count() or 1) + 4)
    with Runtime(thread_pool_size=3) as runtime:
        assert runtime.thread_pool_size == 3


# -- the same program on the process executor ------------------------------------------------


def test_a_routilux_program_runs_on_processes_with_history_from_the_driver() -> None:
    flow, source, recorder = pipeline("on_processes")

    def tally(slot_data, policy_message, job_state) -> None:
        recorder.set_state(job_state, "seen", slot_data["input"])
        job_state.update_shared_data("total", job_state.get_shared_data("total", 0) + 1)
        job_state.append_to_shared_log("tallied")

    recorder.set_logic(tally)
    with Runtime(thread_pool_size=2, executor="process") as runtime:
        job = runtime.run(flow, {"values": [3]}, timeout=WAIT)
    assert job.status == "completed", job.error
    assert recorder.get_state(job, "seen") == [{"value": 3}]
    assert job.shared_data == {"total": 1} and job.get_shared_log() == ["tallied"]
    # remote records span hand-over to replay, so they may overlap: compare without order
    records = job.get_execution_history()
    assert sorted((r.routine_id, r.outcome) for r in records) == [
        ("recorder", "completed"),
        ("source", "completed"),
    ]
    assert all(job.started_at <= r.started_at <= r.finished_at <= job.finished_at for r in records)
