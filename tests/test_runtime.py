"""Runtime: exec and run, the flow registry, bad input, shutdown, resume, logging."""

from __future__ import annotations

from typing import Any

import pytest
from loguru import logger

import routilux_kernel
from routilux_kernel import (
    ErrorHandler,
    ErrorStrategy,
    ExecutionStatus,
    Flow,
    FlowNotFoundError,
    FlowRegistry,
    FlowValidationError,
    JobState,
    Runtime,
    RuntimeShutDownError,
    UnknownEventError,
)
from routilux_kernel.activation_policies import all_slots_ready
from routilux_kernel.core.errors import ExecutorError, JobCancelledError, RoutiluxError
from routilux_kernel.engine.log_config import disable_logging

WAIT = 10.0


# -- the runtime object ------------------------------------------------------------------


def test_exec_by_registered_name(runtime, flow_registry, make_chain) -> None:
    flow_registry.register_by_name("named", make_chain())
    state = runtime.exec("named", {"k": "v"})
    assert state.wait(WAIT)
    assert state.flow_id == "chain"
    assert state.shared_log[-1] == ("r1", [{"k": "v"}])


def test_runtime_can_use_its_own_registry(make_runtime, make_chain) -> None:
    private = FlowRegistry()
    private.register_by_name("mine", make_chain())
    runtime = make_runtime(flow_registry=private)
    assert runtime.run("mine", timeout=WAIT).status == "completed"
    with pytest.raises(FlowNotFoundError, match="registered: none"):
        make_runtime().exec("mine")


def test_unknown_flow_name_lists_registered_names(runtime, flow_registry, make_chain) -> None:
    flow_registry.register_by_name("etl", make_chain(flow_id="etl_flow"))
    flow_registry.register_by_name("report", make_chain(flow_id="report_flow"))
    with pytest.raises(FlowNotFoundError) as info:
        runtime.exec("etll")
    assert str(info.value) == (
        "no flow named 'etll' is registered; registered: 'etl', 'etl_flow', 'report', 'report_flow'"
    )


def test_exec_takes_a_flow_or_a_name(runtime) -> None:
    with pytest.raises(
        FlowNotFoundError, match="exec takes a Flow or a registered flow name, got int"
    ):
        runtime.exec(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("params", [[("a", 1)], "a=1", 5])
def test_entry_params_must_be_a_dict(runtime, params: Any, make_chain) -> None:
    with pytest.raises(
        TypeError,
        match=f"exec\\('chain'\\): entry_params must be a dict.*got {type(params).__name__}",
    ):
        runtime.exec(make_chain(), params)


def test_flow_with_a_routine_without_logic_fails_at_exec(runtime, make_routine, make_chain) -> None:
    flow = make_chain()
    flow.add_routine(make_routine(["input"], []), "lazy")
    with pytest.raises(FlowValidationError, match="routine 'lazy' \\(Routine\\) has no logic"):
        runtime.exec(flow)


def test_emit_of_unknown_event_inside_logic_fails_the_job(runtime, make_routine) -> None:
    flow = Flow("bad_emit")
    routine = make_routine(["trigger"], ["out", "done"])
    routine.set_logic(lambda *a: routine.emit("ouput", x=1))
    flow.add_routine(routine, "typo")
    state = runtime.run(flow, timeout=WAIT)
    assert state.status == "failed"
    assert isinstance(state.error, UnknownEventError)
    assert "'ouput'" in str(state.error) and "done, out" in str(state.error)
    assert state.error_routine_id == "typo"
    assert state.errors[0]["error_type"] == "UnknownEventError"


def test_exec_on_a_shut_down_runtime_is_refused(make_chain) -> None:
    with Runtime(thread_pool_size=2) as runtime:
        assert runtime.run(make_chain(), timeout=WAIT).status == "completed"
    with pytest.raises(RuntimeShutDownError, match="shut down; create a new one"):
        runtime.exec(make_chain())
    runtime.shutdown()  # a second shutdown is harmless


def test_shutdown_without_wait_cancels_running_jobs(make_routine, gates) -> None:
    gate = gates.new()
    runtime = Runtime(thread_pool_size=2)
    flow = Flow("held")
    flow.add_routine(make_routine(logic=lambda *a: gate.wait(WAIT)), "held")
    state = runtime.exec(flow)
    try:
        runtime.shutdown(wait=False)
        assert state.status == "cancelled"
        assert isinstance(state.error, JobCancelledError)
        assert state.cancel_requested
    finally:
        gate.set()
        runtime.shutdown(wait=True)


@pytest.mark.parametrize("size", [0, -2, 1.5])
def test_thread_pool_size_is_checked(size: Any) -> None:
    with pytest.raises(ValueError, match="thread_pool_size must be an int >= 1"):
        Runtime(thread_pool_size=size)


def test_unknown_executor_names_the_installed_ones(make_runtime) -> None:
    # refused at construction, not at the first exec (issue 9)
    with pytest.raises(ExecutorError, match="'warp'.*installed executors: .*thread"):
        make_runtime(executor="warp")


@pytest.mark.parametrize("timeout", [0, -1])
def test_timeout_must_be_positive(runtime, timeout: float, make_chain) -> None:
    with pytest.raises(ValueError, match="timeout must be > 0 seconds"):
        runtime.exec(make_chain(), timeout=timeout)


def test_run_waits_and_passes_options(runtime, make_chain) -> None:
    flow = make_chain(length=3)
    state = runtime.run(flow, {"v": 1}, entry_routine_id="r1", timeout=WAIT)
    assert state.is_finished and state.status == "completed"
    assert state.shared_log == [("r1", [{"v": 1}]), ("r2", [{"v": 1}])]


def test_get_job_and_list_jobs(runtime, make_routine, gates, make_chain) -> None:
    gate = gates.new()
    done = runtime.run(make_chain(), timeout=WAIT)
    held_flow = Flow("held")
    held_flow.add_routine(make_routine(logic=lambda *a: gate.wait(WAIT)), "held")
    held = runtime.exec(held_flow)
    assert runtime.get_job(done.job_id) is done
    assert runtime.get_job(held.job_id) is held
    assert runtime.get_job("nope") is None
    assert runtime.list_jobs() == [done, held]
    assert runtime.list_jobs(status="running") == [held]
    assert runtime.list_jobs(ExecutionStatus.COMPLETED) == [done]
    gate.set()
    assert held.wait(WAIT)


def test_running_jobs_keep_the_flow_they_started_with(
    runtime, make_routine, gates, make_chain
) -> None:
    gate = gates.new()
    flow = make_chain(length=2)
    flow.routines["r1"].set_logic(lambda d, m, s: (gate.wait(WAIT), s.shared_log.append("r1")))
    before = runtime.exec(flow, {"v": 1})
    extra = make_routine(["input"], [], lambda d, m, s: s.shared_log.append("extra"))
    flow.add_routine(extra, "extra")
    flow.connect("r0", "out", "extra", "input")
    gate.set()
    after = runtime.run(flow, {"v": 2}, timeout=WAIT)
    assert before.wait(WAIT)
    assert "extra" not in before.shared_log
    assert "extra" in after.shared_log


def test_exec_of_an_empty_flow_says_so(runtime) -> None:
    with pytest.raises(FlowValidationError, match="flow 'empty' has no routines"):
        runtime.exec(Flow("empty"))


# -- resuming a saved job ------------------------------------------------------------------


def test_resume_keeps_routine_state_and_redelivers_unconsumed_data(runtime, make_routine) -> None:
    flow = Flow("resumable")
    pairs = []
    for rid in ("left_feed", "right_feed"):
        feeder = make_routine(["trigger"], ["out"])

        def feed(slot_data, message, job_state, _rid=rid, _feeder=feeder):
            runs = job_state.get_routine_state(_rid, {}).get("runs", 0)
            job_state.update_routine_state(_rid, {"runs": runs + 1})
            _feeder.emit("out", value=slot_data["trigger"][0]["value"])

        feeder.set_logic(feed)
        flow.add_routine(feeder, rid)
    join = make_routine(
        ["left", "right"],
        [],
        lambda d, m, s: pairs.append((d["left"], d["right"])),
        policy=all_slots_ready(),
    )
    flow.add_routine(join, "join")
    flow.connect("left_feed", "out", "join", "left")
    flow.connect("right_feed", "out", "join", "right")

    first = runtime.run(flow, {"value": "L"}, entry_routine_id="left_feed", timeout=WAIT)
    assert first.status == "completed"
    assert first.unconsumed == {"join": {"left": [{"value": "L"}]}}
    assert pairs == []

    saved = JobState.from_dict(first.to_dict())
    resumed = runtime.run(
        flow, {"value": "R"}, entry_routine_id="right_feed", job_state=saved, timeout=WAIT
    )
    assert resumed is saved and resumed.job_id == first.job_id
    assert resumed.status == "completed"
    assert pairs == [([{"value": "L"}], [{"value": "R"}])]
    assert resumed.unconsumed == {}
    assert resumed.get_routine_state("left_feed") == {"runs": 1}
    assert resumed.get_routine_state("right_feed") == {"runs": 1}


def test_a_running_job_cannot_be_resumed(runtime, make_routine, gates) -> None:
    gate = gates.new()
    flow = Flow("held")
    flow.add_routine(make_routine(logic=lambda *a: gate.wait(WAIT)), "held")
    state = runtime.exec(flow)
    with pytest.raises(ValueError, match=f"job {state.job_id} is still running"):
        runtime.exec(flow, job_state=state)
    gate.set()
    assert state.wait(WAIT)


@pytest.mark.parametrize(
    ("unconsumed", "missing"),
    [
        ({"ghost": {"input": [{"x": 1}]}}, "'ghost'"),
        ({"r1": {"inbox": [{"x": 1}]}}, "'inbox'"),
    ],
    ids=["unknown_routine", "unknown_slot"],
)
def test_resuming_data_the_flow_cannot_take_is_refused_cleanly(
    runtime, unconsumed, missing, make_chain
) -> None:
    flow = make_chain()
    saved = JobState.from_dict({"flow_id": flow.flow_id, "unconsumed": unconsumed})
    try:
        with pytest.raises(FlowValidationError) as info:
            runtime.exec(flow, job_state=saved)
        assert missing in str(info.value) and saved.job_id in str(info.value)
        # the refused job is not left behind as a job that never finishes
        assert runtime.wait_until_all_jobs_finished(timeout=1.0) is True
        assert runtime.list_jobs(status="running") == []
    finally:
        runtime.shutdown(wait=False)  # do not let a stuck job hold up the fixture's shutdown


# -- logging -------------------------------------------------------------------------------


def talking_flow(make_routine) -> Flow:
    """Logs from inside its logic, then fails once under CONTINUE (which the kernel logs)."""
    flow = Flow("logged")

    def talk(slot_data, message, job_state):
        from loguru import logger as user_logger

        user_logger.info("working on {}", slot_data["trigger"][0]["n"])
        raise RuntimeError("handled")

    routine = make_routine(logic=talk)
    routine.set_error_handler(ErrorHandler(ErrorStrategy.CONTINUE))
    flow.add_routine(routine, "talker")
    return flow


def test_library_logs_are_off_by_default(runtime, make_routine) -> None:
    records: list[Any] = []
    sink = logger.add(lambda message: records.append(message.record), level="DEBUG")
    try:
        state = runtime.run(talking_flow(make_routine), {"n": 1}, timeout=WAIT)
    finally:
        logger.remove(sink)
    assert state.status == "completed" and len(state.errors) == 1
    assert [r["message"] for r in records if r["name"].startswith("routilux_kernel")] == []
    assert [r["message"] for r in records] == ["working on 1"]  # the user's own logs still flow


def test_configured_logging_binds_job_and_routine_ids(make_runtime, make_routine) -> None:
    runtime = make_runtime(thread_pool_size=1)  # both jobs run on the same worker thread
    records: list[Any] = []
    sink = routilux_kernel.configure_logging(
        sink=lambda message: records.append(message.record), level="DEBUG"
    )
    try:
        first = runtime.run(talking_flow(make_routine), {"n": 5}, timeout=WAIT)
        second = runtime.run(talking_flow(make_routine), {"n": 6}, timeout=WAIT)
    finally:
        logger.remove(sink)
        disable_logging()
    assert first.status == second.status == "completed"
    for state, n in ((first, 5), (second, 6)):
        mine = [r for r in records if r["message"] == f"working on {n}"]
        assert len(mine) == 1
        assert mine[0]["extra"]["job_id"] == state.job_id
        assert mine[0]["extra"]["routine_id"] == "talker"
    kernel = [r for r in records if r["name"].startswith("routilux_kernel")]
    assert kernel, "configure_logging enabled the library, yet it logged nothing"
    assert any("talker" in r["message"] and "handled" in r["message"] for r in kernel)


def test_resume_without_entry_params_delivers_only_the_saved_data(runtime, make_routine) -> None:
    seen = []
    flow = Flow("pure_resume")
    flow.add_routine(make_routine(["trigger"], [], lambda d, m, s: seen.append("entry")), "start")
    flow.add_routine(make_routine(["inbox"], [], lambda d, m, s: seen.append(d["inbox"])), "sink")
    saved = JobState.from_dict(
        {"flow_id": flow.flow_id, "unconsumed": {"sink": {"inbox": [{"x": 1}]}}}
    )
    resumed = runtime.run(flow, job_state=saved, timeout=WAIT)
    assert resumed.status == "completed"
    assert seen == [[{"x": 1}]]  # the entry routine was not triggered again


def test_validate_accepts_a_flow_whose_entry_is_set(make_routine) -> None:
    flow = Flow("entry_set")
    flow.add_routine(make_routine(["inbox"], [], lambda *a: None), "only")
    with pytest.raises(FlowValidationError, match="no entry routine"):
        flow.check()
    flow.entry = ["only"]
    assert flow.validate() == []
    flow.entry = ["nope"]
    with pytest.raises(FlowValidationError, match="entry routine 'nope' does not exist"):
        flow.check()


def test_shutdown_waiting_from_inside_its_own_job_is_refused(runtime, make_routine) -> None:
    seen = []

    def stop_everything(slot_data, message, job_state):
        try:
            runtime.shutdown(wait=True)
        except RoutiluxError as exc:
            seen.append(str(exc))

    flow = Flow("self_shutdown")
    flow.add_routine(make_routine(["trigger"], [], stop_everything), "stopper")
    state = runtime.run(flow, timeout=WAIT)
    assert state.status == "completed"
    assert seen and "would wait for its own job forever" in seen[0]
