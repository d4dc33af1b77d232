"""Routine: slots, events, config, logic, and emit inside and outside a job."""

from __future__ import annotations

from typing import Any

import pytest

from routilux_kernel import (
    ErrorHandler,
    ErrorStrategy,
    ExecutionStatus,
    Flow,
    NoJobContextError,
    Routine,
    UnknownEventError,
)

WAIT = 10.0


class Greeter(Routine):
    """A routine written the tutorial way: a subclass that overrides ``logic``."""

    def __init__(self) -> None:
        super().__init__()
        self.set_config(greeting="hello")
        self.add_slot("trigger")
        self.add_event("greeted", ["text"])

    def logic(self, slot_data: dict[str, Any], policy_message: Any, job_state: Any) -> None:
        name = slot_data["trigger"][0]["name"]
        job_state.shared_log.append(f"{self.get_config('greeting')} {name}")
        self.emit("greeted", text=name)


def test_slots_events_and_config_are_declared_on_the_definition() -> None:
    routine = Greeter()
    assert list(routine.slots) == ["trigger"]
    assert routine.slots["trigger"].max_queue_length >= 1
    assert routine.events["greeted"].params == ("text",)
    routine.set_config(greeting="hi", extra=1)
    assert routine.get_config("greeting") == "hi"
    assert routine.get_config("missing", "fallback") == "fallback"
    assert routine.config == {"greeting": "hi", "extra": 1}


def test_slots_and_events_views_are_copies() -> None:
    routine = Greeter()
    routine.slots.clear()
    routine.events.clear()
    assert "trigger" in routine.slots
    assert "greeted" in routine.events


def test_overridden_logic_runs_and_reads_config(runtime) -> None:
    flow = Flow("greet")
    routine = Greeter()
    routine.set_config(greeting="bonjour")
    flow.add_routine(routine, "greeter")
    state = runtime.run(flow, {"name": "Ada"}, timeout=WAIT)
    assert state.status == ExecutionStatus.COMPLETED
    assert state.shared_log == ["bonjour Ada"]


def test_set_logic_replaces_the_logic_method(runtime) -> None:
    flow = Flow("greet")
    routine = Greeter()
    routine.set_logic(lambda slot_data, message, job_state: job_state.shared_log.append("custom"))
    flow.add_routine(routine, "greeter")
    state = runtime.run(flow, {"name": "Ada"}, timeout=WAIT)
    assert state.shared_log == ["custom"]


def test_duplicate_slot_or_event_name_is_refused() -> None:
    routine = Greeter()
    with pytest.raises(ValueError, match="already has a slot named 'trigger'"):
        routine.add_slot("trigger")
    with pytest.raises(ValueError, match="already has an event named 'greeted'"):
        routine.add_event("greeted")


@pytest.mark.parametrize("length", [0, -1, 1.5, "3"])
def test_slot_length_must_be_a_positive_int(length: Any) -> None:
    with pytest.raises(ValueError, match="max_queue_length must be an int >= 1"):
        Routine().add_slot("input", max_queue_length=length)


def test_slot_on_full_option_is_checked() -> None:
    with pytest.raises(ValueError, match="on_full must be 'raise' or 'block'"):
        Routine().add_slot("input", on_full="drop")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", None, 3])
def test_slot_and_event_names_must_be_non_empty_strings(name: Any) -> None:
    with pytest.raises(ValueError, match="non-empty string"):
        Routine().add_slot(name)
    with pytest.raises(ValueError, match="non-empty string"):
        Routine().add_event(name)


def test_set_logic_and_policy_take_callables() -> None:
    routine = Routine()
    with pytest.raises(TypeError, match="set_logic takes a callable"):
        routine.set_logic("not callable")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="set_activation_policy takes a policy"):
        routine.set_activation_policy(42)


def test_routine_without_logic_says_how_to_give_it_one() -> None:
    routine = Routine()
    assert not routine.has_logic
    with pytest.raises(NotImplementedError, match="override logic\\(\\) or call set_logic\\(\\)"):
        routine.get_logic()({}, None, None)
    assert Greeter().has_logic


def test_emit_outside_a_job_raises_no_job_context() -> None:
    routine = Greeter()
    with pytest.raises(NoJobContextError, match="outside a running job"):
        routine.emit("greeted", text="x")


def test_emit_of_unknown_event_lists_the_known_events() -> None:
    routine = Greeter()
    with pytest.raises(UnknownEventError, match="'shout'.*its events are: greeted"):
        routine.emit("shout", text="x")


def test_get_error_handler_can_be_overridden() -> None:
    class Forgiving(Greeter):
        def get_error_handler(self) -> ErrorHandler:
            return ErrorHandler(strategy=ErrorStrategy.CONTINUE)

    handler = Forgiving().get_error_handler()
    assert handler.strategy is ErrorStrategy.CONTINUE
    assert Greeter().get_error_handler() is None


def test_one_definition_serves_many_jobs_without_holding_their_data(runtime) -> None:
    flow = Flow("greet")
    routine = Greeter()
    flow.add_routine(routine, "greeter")
    before = dict(vars(routine))
    states = [runtime.exec(flow, {"name": f"n{i}"}) for i in range(20)]
    assert runtime.wait_until_all_jobs_finished(timeout=WAIT)
    assert [s.shared_log for s in states] == [[f"hello n{i}"] for i in range(20)]
    assert vars(routine).keys() == before.keys()
    assert routine.config == {"greeting": "hello"}


def test_emit_for_a_routine_outside_the_flow_fails_naming_it(runtime) -> None:
    stranger = Greeter()
    flow = Flow("strict")
    insider = Routine()
    insider.add_slot("trigger")
    insider.set_logic(lambda *a: stranger.emit("greeted", text="hi"))
    flow.add_routine(insider, "insider")
    state = runtime.run(flow, timeout=WAIT)
    assert state.status == ExecutionStatus.FAILED
    assert "Greeter.emit" in str(state.error)
    assert "not part of flow 'strict'" in str(state.error)
    assert state.error_routine_id == "insider"
