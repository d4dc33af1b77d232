"""Flow building and the flow registry: ids, connections, entry routines, clear errors."""

from __future__ import annotations

import pytest

from routilux_kernel import Flow, FlowNotFoundError, FlowRegistry, FlowValidationError


def pipeline(make_routine) -> Flow:
    flow = Flow("pipeline")
    flow.add_routine(make_routine(["trigger"], ["out", "side"], lambda *a: None), "source")
    flow.add_routine(make_routine(["input", "extra"], ["done"], lambda *a: None), "sink")
    return flow


def test_add_routine_returns_given_or_generated_ids(make_routine) -> None:
    flow = Flow("f")
    assert flow.add_routine(make_routine(), "first") == "first"
    generated = flow.add_routine(make_routine())
    again = flow.add_routine(make_routine())
    assert generated == "routine_1"
    assert again == "routine_2"
    assert list(flow.routines) == ["first", "routine_1", "routine_2"]


def test_flow_id_is_generated_when_omitted() -> None:
    assert Flow().flow_id != Flow().flow_id
    assert Flow("named").flow_id == "named"
    with pytest.raises(FlowValidationError, match="flow_id must be a non-empty string"):
        Flow("")


def test_duplicate_routine_id_names_the_id_and_existing_ids(make_routine) -> None:
    flow = pipeline(make_routine)
    with pytest.raises(FlowValidationError) as info:
        flow.add_routine(make_routine(), "sink")
    message = str(info.value)
    assert "'sink'" in message and "already used" in message
    assert "source, sink" in message
    assert "'pipeline'" in message


def test_same_routine_instance_cannot_be_added_twice(make_routine) -> None:
    flow = Flow("f")
    routine = make_routine()
    flow.add_routine(routine, "a")
    with pytest.raises(FlowValidationError, match="already added as 'a'"):
        flow.add_routine(routine, "b")


def test_add_routine_rejects_non_routines_and_blank_ids(make_routine) -> None:
    flow = Flow("f")
    with pytest.raises(FlowValidationError, match="add_routine takes a Routine, got str"):
        flow.add_routine("nope")  # type: ignore[arg-type]
    with pytest.raises(FlowValidationError, match="non-empty string"):
        flow.add_routine(make_routine(), "  ")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("ghost", "out", "sink", "input"),
            "unknown source routine 'ghost'; routines in this flow: 'source', 'sink'",
        ),
        (
            ("source", "out", "ghost", "input"),
            "unknown target routine 'ghost'; routines in this flow: 'source', 'sink'",
        ),
        (("source", "shout", "sink", "input"), "no event 'shout'; its events: 'out', 'side'"),
        (("source", "out", "sink", "inbox"), "no slot 'inbox'; its slots: 'input', 'extra'"),
    ],
)
def test_connect_to_unknown_names_says_what_exists(make_routine, args, expected) -> None:
    flow = pipeline(make_routine)
    with pytest.raises(FlowValidationError) as info:
        flow.connect(*args)
    assert expected in str(info.value)
    assert flow.connections == []


def test_connect_twice_is_refused(make_routine) -> None:
    flow = pipeline(make_routine)
    connection = flow.connect("source", "out", "sink", "input")
    assert str(connection) == "source.out -> sink.input"
    with pytest.raises(FlowValidationError, match="already connected"):
        flow.connect("source", "out", "sink", "input")


def test_routing_table_fans_out_one_event(make_routine) -> None:
    flow = pipeline(make_routine)
    flow.connect("source", "out", "sink", "input")
    flow.connect("source", "out", "sink", "extra")
    assert flow.targets("source", "out") == (("sink", "input"), ("sink", "extra"))
    assert flow.targets("source", "side") == ()


def test_entry_routines_have_an_unfed_trigger_slot(make_routine) -> None:
    flow = Flow("f")
    flow.add_routine(make_routine(["trigger"], ["out"], lambda *a: None), "a")
    flow.add_routine(make_routine(["trigger"], ["out"], lambda *a: None), "b")
    flow.add_routine(make_routine(["input"], [], lambda *a: None), "c")
    flow.add_routine(make_routine(["trigger"], [], lambda *a: None), "d")
    assert flow.entry_routine_ids() == ["a", "b", "d"]
    flow.connect("a", "out", "b", "trigger")
    assert flow.entry_routine_ids() == ["a", "d"]


def test_validate_lists_every_problem(make_routine) -> None:
    flow = Flow("broken")
    flow.add_routine(make_routine(["input"], []), "no_logic")
    problems = flow.validate()
    assert len(problems) == 2
    assert "no entry routine" in problems[0]
    assert "'no_logic'" in problems[1] and "has no logic" in problems[1]
    with pytest.raises(FlowValidationError) as info:
        flow.check()
    assert str(info.value) == "; ".join(problems)
    assert Flow("empty").validate() == ["flow 'empty' has no routines"]


def test_valid_flow_validates(make_routine) -> None:
    flow = pipeline(make_routine)
    flow.connect("source", "out", "sink", "input")
    assert flow.validate() == []
    flow.check()


def test_mermaid_shows_routines_and_connections(make_routine) -> None:
    flow = pipeline(make_routine)
    flow.connect("source", "out", "sink", "input")
    text = flow.to_mermaid()
    assert text.startswith("graph LR")
    assert 'source["source<br/>Routine"]' in text
    assert "source -->|out → input| sink" in text


def test_registry_finds_flows_by_name_and_id(flow_registry: FlowRegistry, make_routine) -> None:
    flow = pipeline(make_routine)
    assert FlowRegistry.get_instance() is flow_registry
    flow_registry.register_by_name("etl", flow)
    assert flow_registry.get("etl") is flow
    assert flow_registry.get("pipeline") is flow
    assert flow_registry.get_by_name("pipeline") is None
    assert flow_registry.get("nothing") is None
    assert flow_registry.list_names() == ["etl", "pipeline"]
    assert flow_registry.unregister("etl")
    assert flow_registry.get("pipeline") is None


def test_registry_require_lists_registered_names(flow_registry: FlowRegistry, make_routine) -> None:
    flow_registry.register_by_name("alpha", pipeline(make_routine))
    flow_registry.register(Flow("beta"))
    with pytest.raises(FlowNotFoundError) as info:
        flow_registry.require("gamma")
    assert str(info.value) == (
        "no flow named 'gamma' is registered; registered: 'alpha', 'beta', 'pipeline'"
    )


def test_registry_only_takes_flows(flow_registry: FlowRegistry) -> None:
    with pytest.raises(FlowValidationError, match="FlowRegistry takes a Flow, got dict"):
        flow_registry.register_by_name("x", {})  # type: ignore[arg-type]
    with pytest.raises(FlowValidationError, match="a flow name must be a non-empty string"):
        flow_registry.register_by_name("", Flow("x"))
