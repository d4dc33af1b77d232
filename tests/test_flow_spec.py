"""Flow.to_dict() / Flow.from_dict(): the flow-file format as data, its checks and round trip."""

from __future__ import annotations

import sys
import textwrap
import uuid
from typing import Any

import pytest

from routilux_kernel import ErrorHandler, ErrorStrategy, Flow, Routine, Runtime, hookimpl
from routilux_kernel.activation_policies import ActivationPolicy, batch_size, custom
from routilux_kernel.core.errors import FlowValidationError
from routilux_kernel.flowfiles import FlowFileError, flow_entry, flow_params
from routilux_kernel.hooks.manager import create_plugin_manager


class Fetch(Routine):
    """Emits its configured name."""

    def __init__(self) -> None:
        super().__init__()
        self.set_config(name="fetch")
        self.add_slot("trigger")
        self.add_event("output", ["value"])

    def logic(self, slot_data: Any, policy_message: Any, job_state: Any) -> None:
        for item in slot_data["trigger"]:
            self.emit("output", value=f"{self.get_config('name')}:{item.get('word', '-')}")


class Collect(Routine):
    """Appends every value it receives to the shared log, sorted per activation."""

    def __init__(self) -> None:
        super().__init__()
        self.add_slot("input")

    def logic(self, slot_data: Any, policy_message: Any, job_state: Any) -> None:
        job_state.shared_log.extend(sorted(item["value"] for item in slot_data["input"]))


class Broken(Routine):
    def __init__(self) -> None:
        super().__init__()
        raise RuntimeError("no database configured")


class NoLogic(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.add_slot("trigger")


class TransientError(Exception):
    pass


def every_second_item(slots: Any, job_state: Any) -> Any:
    """A module-level custom policy, so a flow file can name it."""
    if slots.count("input") >= 2:
        return True, {"input": slots.take("input", 2)}, None
    return False, None, None


class RoutinesPlugin:
    @hookimpl
    def register_routines(self, register: Any) -> None:
        register("fetch", Fetch)
        register("collect", Collect)


def registered_pm() -> Any:
    return create_plugin_manager(load_entry_points=False, plugins=[RoutinesPlugin()])


def here(name: str) -> str:
    return f"{__name__}:{name}"


def fan_in_data(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "flow_id": "fan_in",
        "routines": {
            "a": {"use": here("Fetch"), "config": {"name": "A"}},
            "b": {"use": here("Fetch"), "config": {"name": "B"}},
            "sink": {
                "use": here("Collect"),
                "activation_policy": {"name": "batch_size", "size": 2},
            },
        },
        "connections": ["a.output -> sink.input", {"from": "b.output", "to": "sink.input"}],
    }
    data.update(extra)
    return data


def run_once(flow: Flow, params: dict[str, Any] | None = None) -> Any:
    with Runtime() as runtime:
        state = runtime.exec(flow, params or flow_params(flow), entry_routine_id=flow_entry(flow))
        assert state.wait(5)
    return state


def test_from_dict_builds_a_flow_that_runs() -> None:
    flow = Flow.from_dict(fan_in_data(params={"word": "hi"}))
    assert flow.flow_id == "fan_in"
    assert [str(c) for c in flow.connections] == [
        "a.output -> sink.input",
        "b.output -> sink.input",
    ]
    assert flow.routines["a"].get_config("name") == "A"
    state = run_once(flow)
    assert state.status == "completed"
    assert state.shared_log == ["A:hi", "B:hi"]  # one batch of two: the batch_size policy applied


def test_round_trip_keeps_everything_a_file_can_say() -> None:
    flow = Flow("everything")
    first = Fetch()
    first.set_config(name="first")
    first.set_error_handler(
        ErrorHandler(
            ErrorStrategy.RETRY,
            max_retries=4,
            retry_delay=0.01,
            retryable_exceptions=(TransientError, ConnectionError),
        )
    )
    first.set_executor("thread")
    flow.add_routine(first, "first")
    sink = Collect()
    sink.set_activation_policy(batch_size(3, flush_at_end=True))
    flow.add_routine(sink, "sink")
    third = Collect()
    third.set_activation_policy(custom(every_second_item))
    flow.add_routine(third, "pairs")
    flow.connect("first", "output", "sink", "input")
    flow.connect("first", "output", "pairs", "input")
    flow.set_error_handler(ErrorHandler(ErrorStrategy.CONTINUE))
    flow.set_executor("thread", max_workers=3)

    data = flow.to_dict()
    assert data["routines"]["first"] == {
        "use": here("Fetch"),
        "config": {"name": "first"},
        "error_handler": {
            "strategy": "retry",
            "max_retries": 4,
            "retry_delay": 0.01,
            "retry_backoff": 2.0,
            "retryable_exceptions": [here("TransientError"), "ConnectionError"],
        },
        "executor": "thread",
    }
    assert data["routines"]["sink"]["activation_policy"] == {
        "name": "batch_size",
        "size": 3,
        "flush_at_end": True,
    }
    assert data["routines"]["pairs"]["activation_policy"] == {
        "name": "custom",
        "fn": here("every_second_item"),
    }
    assert data["executor"] == {"name": "thread", "options": {"max_workers": 3}}
    assert data["error_handler"] == {"strategy": "continue"}

    again = Flow.from_dict(data)
    assert again.to_dict() == data
    handler = again.routines["first"].get_error_handler()
    assert handler.retryable_exceptions == (TransientError, ConnectionError)
    assert again.routines["pairs"].get_activation_policy().fn is every_second_item
    assert (again.executor, again.executor_options) == ("thread", {"max_workers": 3})


def test_entry_and_params_survive_the_round_trip() -> None:
    data = fan_in_data(entry=["a"], params={"word": "x"})
    flow = Flow.from_dict(data)
    assert flow_entry(flow) == ["a"]
    assert flow.to_dict()["entry"] == ["a"] and flow.to_dict()["params"] == {"word": "x"}
    sink_policy = {"name": "batch_size", "size": 1}
    data["routines"]["sink"]["activation_policy"] = sink_policy
    state = run_once(Flow.from_dict(data))
    assert state.shared_log == ["A:x"]  # only the named entry routine started


def test_registered_names_are_written_back_as_names() -> None:
    pm = registered_pm()
    data = {
        "flow_id": "named",
        "routines": {"f": {"use": "fetch", "config": {"name": "F"}}, "c": "collect"},
        "connections": ["f.output -> c.input"],
    }
    flow = Flow.from_dict(data, plugin_manager=pm)
    out = flow.to_dict()
    assert out["routines"]["f"]["use"] == "fetch"
    assert out["routines"]["c"]["use"] == "collect"
    assert Flow.from_dict(out, plugin_manager=pm).to_dict() == out
    with Runtime(plugin_manager=pm) as runtime:
        state = runtime.run(flow, {"word": "w"}, timeout=5)
    assert state.shared_log == ["F:w"]


def test_every_problem_is_reported_at_once_with_its_key_path() -> None:
    data = {
        "flow_id": "",
        "routnes": {},
        "routines": {
            "a": {"use": "no_such_routine", "confg": {}},
            "b": {"use": here("Missing")},
            "c": {
                "use": here("Collect"),
                "activation_policy": {"name": "batch_size", "sise": 2},
                "error_handler": {"strategy": "explode", "max_retries": -1},
                "executor": "warp",
            },
            "d": {"use": here("Broken")},
            "e": {"use": here("NoLogic")},
            "f": {"use": here("Fetch")},
        },
        "connections": ["f.outptu -> c.input", "f.output -> nowhere.input", "garbage"],
        "executor": {"name": "thread", "opts": {}},
        "entry": ["zz"],
    }
    with pytest.raises(FlowFileError) as caught:
        Flow.from_dict(data, source="flow.yaml")
    problems = caught.value.problems
    assert all(p.startswith("flow.yaml: ") for p in problems)
    paths = [p.split(": ")[1] for p in problems]
    assert sorted(paths) == sorted(
        [
            "routnes",
            "flow_id",
            "routines.a.confg",
            "routines.a.use",
            "routines.b.use",
            "routines.c.error_handler.strategy",
            "routines.c.error_handler.max_retries",
            "routines.c.activation_policy.sise",
            "routines.c.executor",
            "routines.d.use",
            "routines.e.use",
            "connections[0]",
            "connections[1]",
            "connections[2]",
            "executor.opts",
            "entry[0]",
        ]
    )
    text = "\n".join(problems)
    assert "unknown routine 'no_such_routine'; registered routines: " in text
    assert "has no attribute 'Missing'" in text
    assert "RuntimeError: no database configured" in text
    assert "has no event 'outptu'; its events: 'output'" in text
    assert (
        "unknown error strategy 'explode'; registered strategies: continue, retry, skip, stop"
        in text
    )
    assert "unknown executor 'warp'; registered executors:" in text
    assert "NoLogic has no logic" in text


def test_unknown_registered_name_lists_what_is_registered() -> None:
    with pytest.raises(FlowFileError, match="registered routines: collect, fetch"):
        Flow.from_dict({"routines": {"x": {"use": "fetcher"}}}, plugin_manager=registered_pm())


def test_a_flow_without_an_entry_routine_is_rejected() -> None:
    data = {"routines": {"c": {"use": here("Collect")}}}
    with pytest.raises(FlowFileError, match="entry: no entry routine"):
        Flow.from_dict(data)
    flow = Flow.from_dict({**data, "entry": "c"})  # one slot: it can be an entry routine
    state = run_once(flow, {"value": "direct"})
    assert state.shared_log == ["direct"]


def test_an_entry_routine_needs_a_trigger_or_a_single_slot() -> None:
    data = fan_in_data(entry=["sink"])
    data["routines"]["sink"] = {"use": "routilux_kernel.core.routine:Routine"}
    with pytest.raises(FlowFileError) as caught:
        Flow.from_dict(data)
    assert any("entry[0]" in p and "needs a 'trigger' slot" in p for p in caught.value.problems)


def test_policy_and_handler_shorthands() -> None:
    data = fan_in_data()
    data["routines"]["sink"]["activation_policy"] = "all_slots_ready"
    data["routines"]["a"]["error_handler"] = "skip"
    flow = Flow.from_dict(data)
    assert isinstance(flow.routines["sink"].get_activation_policy(), ActivationPolicy)
    assert flow.routines["sink"].get_activation_policy().name == "all_slots_ready"
    assert flow.routines["a"].get_error_handler().strategy == ErrorStrategy.SKIP


def test_to_dict_refuses_routines_a_file_cannot_name() -> None:
    class Local(Fetch):
        pass

    flow = Flow("local")
    flow.add_routine(Local(), "local_one")
    with pytest.raises(FlowValidationError, match="routine 'local_one' is a .*Local"):
        flow.to_dict()
    plain = Flow("plain")
    routine = Routine()
    routine.add_slot("trigger")
    routine.set_logic(lambda slot_data, message, job_state: None)
    plain.add_routine(routine, "inline")
    with pytest.raises(FlowValidationError, match="routine 'inline' is a Routine"):
        plain.to_dict()


def write_side_effect_module(tmp_path: Any) -> tuple[str, Any]:
    """A module whose import leaves a marker file, to prove whether it was imported."""
    name = f"untrusted_{uuid.uuid4().hex[:10]}"
    marker = tmp_path / f"{name}.imported"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(f"""
        import pathlib
        pathlib.Path({str(marker)!r}).write_text("imported")
        from routilux_kernel import Routine

        class Evil(Routine):
            def __init__(self):
                super().__init__()
                self.add_slot("trigger")

            def logic(self, slot_data, message, job_state):
                pass

        class EvilError(Exception):
            pass

        def evil_policy(slots, job_state):
            return False, None, None
    """)
    )
    return name, marker


@pytest.mark.parametrize("part", ["use", "retryable_exceptions", "policy_fn"])
def test_registered_only_refuses_imports_without_importing(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, part: str
) -> None:
    name, marker = write_side_effect_module(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    routine: dict[str, Any] = {"use": "fetch"}
    if part == "use":
        routine = {"use": f"{name}:Evil"}
    elif part == "retryable_exceptions":
        routine["error_handler"] = {
            "strategy": "retry",
            "retryable_exceptions": [f"{name}:EvilError"],
        }
    else:
        routine["activation_policy"] = {"name": "custom", "fn": f"{name}:evil_policy"}
    data = {"routines": {"r": routine}}
    with pytest.raises(FlowFileError, match="imports are switched off") as caught:
        Flow.from_dict(data, plugin_manager=registered_pm(), registered_only=True)
    assert "registered routines: collect, fetch" in str(caught.value)
    assert not marker.exists()
    assert name not in sys.modules
    # The same data without the switch does import the module: the check above can fail.
    Flow.from_dict(data, plugin_manager=registered_pm())
    assert marker.exists()


def test_registered_only_still_allows_registered_names_and_builtin_exceptions() -> None:
    data = {
        "routines": {
            "f": {
                "use": "fetch",
                "error_handler": {"strategy": "retry", "retryable_exceptions": ["TimeoutError"]},
            },
        }
    }
    flow = Flow.from_dict(data, plugin_manager=registered_pm(), registered_only=True)
    assert flow.routines["f"].get_error_handler().retryable_exceptions == (TimeoutError,)
