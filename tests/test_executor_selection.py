"""Which executor runs a routine: routine > Runtime(executor=) > flow > env > config file > thread.

Each level is tested against the level just below it, with the two naming different
executors; where a routine ran is told by its process id.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from routilux_kernel import ExecutionStatus, Flow, Routine
from routilux_kernel.core.errors import ExecutorError

WAIT = 10.0


def pid_flow(make_routine, flow_id: str = "where") -> Flow:
    def record_pid(slot_data, message, job_state):
        job_state.shared_data["pid"] = os.getpid()

    flow = Flow(flow_id)
    flow.add_routine(make_routine(events=[], logic=record_pid), "probe")
    return flow


def ran_in_a_worker_process(make_runtime, flow: Flow, **runtime_options) -> bool:
    runtime = make_runtime(**runtime_options)
    state = runtime.run(flow, timeout=WAIT)
    assert state.status == ExecutionStatus.COMPLETED, state.error
    return state.shared_data["pid"] != os.getpid()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project directory as the working directory."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_thread_is_the_default(project, make_runtime, make_routine):
    assert not ran_in_a_worker_process(make_runtime, pid_flow(make_routine))


def test_routilux_toml_picks_the_executor(project, make_runtime, make_routine):
    (project / "routilux.toml").write_text('executor = "process"\n')
    assert ran_in_a_worker_process(make_runtime, pid_flow(make_routine))


def test_tool_routilux_in_pyproject_picks_the_executor_and_its_options(
    project, make_runtime, make_routine
):
    (project / "pyproject.toml").write_text(
        '[project]\nname = "demo"\n\n'
        '[tool.routilux.executor]\nname = "process"\noptions = { max_workers = 1 }\n'
    )
    runtime = make_runtime()
    state = runtime.run(pid_flow(make_routine), timeout=WAIT)
    assert state.shared_data["pid"] != os.getpid()
    assert runtime.executor("process").max_workers == 1


def test_the_config_file_is_found_from_a_subdirectory(project, make_runtime, make_routine):
    (project / "routilux.toml").write_text('executor = "process"\n')
    nested = project / "src" / "jobs"
    nested.mkdir(parents=True)
    os.chdir(nested)
    assert ran_in_a_worker_process(make_runtime, pid_flow(make_routine))


def test_environment_beats_the_config_file(project, monkeypatch, make_runtime, make_routine):
    (project / "routilux.toml").write_text('executor = "thread"\n')
    monkeypatch.setenv("ROUTILUX_EXECUTOR", "process")
    assert ran_in_a_worker_process(make_runtime, pid_flow(make_routine))

    (project / "routilux.toml").write_text('executor = "process"\n')
    monkeypatch.setenv("ROUTILUX_EXECUTOR", "thread")
    assert not ran_in_a_worker_process(make_runtime, pid_flow(make_routine))


def test_the_flow_beats_the_environment(project, monkeypatch, make_runtime, make_routine):
    monkeypatch.setenv("ROUTILUX_EXECUTOR", "thread")
    flow = pid_flow(make_routine)
    flow.set_executor("process", max_workers=1)
    assert ran_in_a_worker_process(make_runtime, flow)


PROBE_MODULE = """
import os

from routilux_kernel import Routine


class PidProbe(Routine):
    def __init__(self):
        super().__init__()
        self.add_slot("trigger")

    def logic(self, slot_data, policy_message, job_state):
        job_state.shared_data["pid"] = os.getpid()
"""


def test_a_flow_file_beats_the_environment_and_code_beats_the_flow_file(
    project, monkeypatch, make_runtime
):
    from routilux_kernel.flowfiles.files import load_flow_file

    # The routine class lives next to the flow file: workers must import it from there.
    (project / "file_probes.py").write_text(PROBE_MODULE)
    (project / "where.json").write_text(
        '{"flow_id": "where-file", "executor": {"name": "process", "options": '
        '{"max_workers": 1}}, "routines": {"probe": {"use": "file_probes:PidProbe"}}}'
    )
    monkeypatch.setenv("ROUTILUX_EXECUTOR", "thread")
    monkeypatch.setattr(sys, "path", list(sys.path))  # the loader extends it

    flow = load_flow_file(project / "where.json")

    assert ran_in_a_worker_process(make_runtime, flow)
    assert not ran_in_a_worker_process(make_runtime, flow, executor="thread")


def test_code_beats_the_flow(project, make_runtime, make_routine):
    flow = pid_flow(make_routine)
    flow.set_executor("process")
    assert not ran_in_a_worker_process(make_runtime, flow, executor="thread")


def test_a_routine_beats_the_runtime(project, make_runtime, make_routine):
    flow = pid_flow(make_routine)
    flow.routines["probe"].set_executor("process")
    assert ran_in_a_worker_process(make_runtime, flow, executor="thread")


def test_one_flow_can_mix_a_process_routine_with_thread_routines(
    project, make_runtime, make_routine
):
    def split(slot_data, message, job_state):
        job_state.update_routine_state("split", {"pid": os.getpid()})
        for n in (200_000, 300_000):
            routines["split"].emit("out", n=n)

    def crunch(slot_data, message, job_state):  # CPU-heavy: worth a process of its own
        for item in slot_data["in"]:
            total = sum(i * i for i in range(item["n"]))
            routines["crunch"].emit("out", n=item["n"], total=total, pid=os.getpid())

    def collect(slot_data, message, job_state):
        for item in slot_data["in"]:
            job_state.shared_log.append(item)
        job_state.update_routine_state("collect", {"pid": os.getpid()})

    routines: dict[str, Routine] = {
        "split": make_routine(logic=split),
        "crunch": make_routine(slots=["in"], logic=crunch),
        "collect": make_routine(slots=["in"], events=[], logic=collect),
    }
    routines["crunch"].set_executor("process")
    flow = Flow("mixed")
    for routine_id, routine in routines.items():
        flow.add_routine(routine, routine_id)
    flow.connect("split", "out", "crunch", "in")
    flow.connect("crunch", "out", "collect", "in")

    state = make_runtime().run(flow, timeout=WAIT)

    assert state.status == ExecutionStatus.COMPLETED, state.error
    me = os.getpid()
    assert state.get_routine_state("split")["pid"] == me
    assert state.get_routine_state("collect")["pid"] == me
    results = sorted(state.shared_log, key=lambda item: item["n"])
    assert [r["total"] for r in results] == [
        sum(i * i for i in range(n)) for n in (200_000, 300_000)
    ]
    assert all(r["pid"] != me for r in results)


def test_an_unknown_executor_fails_with_the_installed_names(project, make_runtime, make_routine):
    with pytest.raises(ExecutorError) as caught:
        make_runtime(executor="warp-drive")  # refused at construction, before any exec
    message = str(caught.value)
    assert "Runtime(executor='warp-drive')" in message
    assert "process" in message and "thread" in message


def test_an_unknown_executor_in_the_config_file_names_the_file(project, make_runtime, make_routine):
    (project / "routilux.toml").write_text('executor = "warp-drive"\n')
    with pytest.raises(ExecutorError, match="routilux.toml"):
        make_runtime().exec(pid_flow(make_routine))


def test_changing_a_routines_executor_after_a_run_takes_effect(project, make_runtime, make_routine):
    runtime = make_runtime()
    flow = pid_flow(make_routine)
    first = runtime.run(flow, timeout=WAIT)
    assert first.shared_data["pid"] == os.getpid()
    flow.routines["probe"].set_executor("process")  # no change to the flow itself
    second = runtime.run(flow, timeout=WAIT)
    assert second.status == ExecutionStatus.COMPLETED, second.error
    assert second.shared_data["pid"] != os.getpid()


def test_one_executor_name_with_two_sets_of_options_is_refused(project, make_runtime, make_routine):
    runtime = make_runtime()
    first = pid_flow(make_routine, "first")
    first.set_executor("process", max_workers=1)
    assert runtime.run(first, timeout=WAIT).status == ExecutionStatus.COMPLETED
    second = pid_flow(make_routine, "second")
    second.set_executor("process", max_workers=2)
    with pytest.raises(ExecutorError) as info:
        runtime.exec(second)
    message = str(info.value)
    assert "'process'" in message and "flow 'first'" in message and "flow 'second'" in message
    same = pid_flow(make_routine, "same")
    same.set_executor("process", max_workers=1)
    assert runtime.run(same, timeout=WAIT).status == ExecutionStatus.COMPLETED


def test_an_unknown_key_in_the_config_file_is_an_error(project, make_runtime, make_routine):
    (project / "routilux.toml").write_text('exector = "process"\n')
    runtime = make_runtime()
    from routilux_kernel.engine.config import ConfigError

    with pytest.raises(ConfigError, match=r"routilux.toml: unknown key\(s\) exector; known keys"):
        runtime.exec(pid_flow(make_routine))


def test_a_routine_naming_the_runtimes_executor_gets_the_runtimes_options(
    project, make_runtime, make_routine
):
    flow = pid_flow(make_routine)
    flow.routines["probe"].set_executor("process")
    runtime = make_runtime(executor="process", executor_options={"max_workers": 1})
    state = runtime.run(flow, timeout=WAIT)
    assert state.status == ExecutionStatus.COMPLETED, state.error
    assert runtime.executor("process").max_workers == 1
