"""Concurrency within one job; routines that describe themselves (slots, events, config)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from routilux_kernel import ExecutionStatus, Flow, Routine, Runtime, create_plugin_manager, hookimpl
from routilux_kernel.cli import main
from routilux_kernel.flowfiles import FlowFileError

WAIT = 10.0


class Fan(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.add_slot("trigger")
        self.add_event("item", ["n"])

    def logic(self, slot_data: Any, message: Any, job_state: Any) -> None:
        for n in range(slot_data["trigger"][0]["count"]):
            self.emit("item", n=n)


class Hold(Routine):
    """Waits until `peak` activations of it run at once, then records what it saw."""

    def __init__(self, barrier: threading.Barrier, timeout: float = WAIT) -> None:
        super().__init__()
        self.barrier = barrier
        self.timeout = timeout
        self.add_slot("in")

    def logic(self, slot_data: Any, message: Any, job_state: Any) -> None:
        self.barrier.wait(timeout=self.timeout)  # passes only when `parties` activations are inside
        job_state.shared_log.extend(item["n"] for item in slot_data["in"])


def test_up_to_n_activations_of_one_routine_run_at_once_in_one_job() -> None:
    barrier = threading.Barrier(4)
    flow = Flow("fan")
    flow.add_routine(Fan(), "fan")
    flow.add_routine(Hold(barrier).set_concurrency(4), "hold")
    flow.connect("fan", "item", "hold", "in")
    with Runtime(thread_pool_size=8) as runtime:
        job = runtime.exec(flow, {"count": 8})
        assert job.wait(WAIT)
    assert job.status == ExecutionStatus.COMPLETED, job.error
    assert sorted(job.shared_log) == list(range(8))


def test_concurrency_one_is_the_default_and_runs_activations_one_at_a_time() -> None:
    barrier = threading.Barrier(2)  # two at once never happens at concurrency 1
    flow = Flow("serial")
    flow.add_routine(Fan(), "fan")
    flow.add_routine(Hold(barrier, timeout=0.5), "hold")
    flow.connect("fan", "item", "hold", "in")
    with Runtime(thread_pool_size=8) as runtime:
        job = runtime.exec(flow, {"count": 3})
        assert job.wait(WAIT)
    assert job.status == ExecutionStatus.FAILED
    assert isinstance(job.error, threading.BrokenBarrierError)


class Counter(Routine):
    """Keeps a running count in its routine state."""

    allows_concurrency = False
    config_schema = {
        "step": {"type": "integer", "default": 1, "description": "added per item"},
        "label": {"type": ["string", "null"], "description": "a name"},
        "mode": {"type": "string", "default": "sum", "enum": ["sum", "max"], "description": "how"},
        "target": {"type": "string", "required": True, "description": "where"},
    }

    def __init__(self) -> None:
        super().__init__()
        self.add_slot("trigger")
        self.add_event("counted", ["total"])

    def logic(self, slot_data: Any, message: Any, job_state: Any) -> None:
        self.emit("counted", total=self.get_config("step"))


def test_a_routine_keeping_state_refuses_concurrency_and_bad_values_are_refused() -> None:
    with pytest.raises(ValueError, match="Counter keeps per-job state"):
        Counter().set_concurrency(2)
    assert Counter().set_concurrency(1).concurrency == 1
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="concurrency must be an int >= 1"):
            Fan().set_concurrency(bad)  # type: ignore[arg-type]


def test_get_config_falls_back_to_the_schema_default() -> None:
    counter = Counter()
    assert counter.get_config("step") == 1 and counter.get_config("mode") == "sum"
    assert counter.get_config("step", 5) == 5
    counter.set_config(step=3)
    assert counter.get_config("step") == 3


def test_describe_gives_slots_events_schema_and_concurrency() -> None:
    described = Counter().describe()
    assert described["class"].endswith(":Counter")
    assert described["description"] == "Keeps a running count in its routine state."
    assert described["slots"] == [{"name": "trigger", "max_queue_length": 1000, "on_full": "raise"}]
    assert described["events"] == [{"name": "counted", "params": ["total"], "optional": []}]
    assert described["config_schema"]["step"]["default"] == 1
    assert described["allows_concurrency"] is False and described["concurrency"] == 1


class CounterPlugin:
    @hookimpl
    def register_routines(self, register: Any) -> None:
        register("counter", Counter)
        register("fan", Fan)


def test_flow_files_check_config_against_the_schema_naming_routine_key_and_keys() -> None:
    pm = create_plugin_manager(load_entry_points=False, plugins=[CounterPlugin()])
    data = {
        "flow_id": "bad",
        "routines": {
            "c": {"use": "counter", "config": {"step": "two", "colour": 1, "mode": "avg"}},
            "f": {"use": "fan", "concurrency": 0},
            "k": {"use": "counter", "config": {"target": "x"}, "concurrency": 3},
        },
        "connections": [],
    }
    with pytest.raises(FlowFileError) as caught:
        Flow.from_dict(data, source="bad.yaml", plugin_manager=pm)
    text = "\n".join(caught.value.problems)
    assert "bad.yaml: routines.c.config.step: Counter expects integer for 'step', got str" in text
    assert (
        "routines.c.config.colour: Counter has no config key 'colour'; its keys are: "
        "label, mode, step, target" in text
    )
    assert "routines.c.config.mode: Counter expects one of ['sum', 'max'] for 'mode'" in text
    assert "routines.c.config.target: Counter requires 'target' (string); it is missing" in text
    assert "routines.f.concurrency: Fan: concurrency must be an int >= 1, got 0" in text
    assert "routines.k.concurrency: Counter keeps per-job state" in text


def test_concurrency_round_trips_through_flow_files_and_validate_reports_schema_problems(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    pm = create_plugin_manager(load_entry_points=False, plugins=[CounterPlugin()])
    good = Flow.from_dict(
        {"flow_id": "ok", "routines": {"f": {"use": "fan", "concurrency": 3}}},
        plugin_manager=pm,
    )
    assert good.routines["f"].concurrency == 3
    assert good.to_dict()["routines"]["f"]["concurrency"] == 3
    path = tmp_path / "flow.yaml"
    path.write_text("flow_id: v\nroutines:\n  c: {use: counter, config: {step: 1.5}}\n")
    assert main(["validate", str(path)], plugin_manager=pm) == 2
    err = capsys.readouterr().err
    assert "routines.c.config.step: Counter expects integer for 'step', got float 1.5" in err
    assert "routines.c.config.target: Counter requires 'target'" in err


def test_routines_command_shows_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    pm = create_plugin_manager(load_entry_points=False, plugins=[CounterPlugin()])
    assert main(["routines"], plugin_manager=pm) == 0
    out = capsys.readouterr().out
    assert "      step: integer = 1  added per item" in out
    assert "      target: string (required)  where" in out
    assert "    concurrency: 1 only (keeps per-job state)" in out
