"""Each std routine in a real flow on the thread executor, and the errors it reports."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from routilux_std.catalogue import ROUTINES
from routilux_std.external import HttpRequest, ShellCommand
from routilux_std.extraction import Extract
from routilux_std.grouping import Aggregate, Batch, Join
from routilux_std.pacing import Debounce, RateLimit
from routilux_std.routing import Router
from routilux_std.sinks import WriteCsv, WriteJsonLines
from routilux_std.sources import ReadCsv, ReadJsonLines, ReadLines
from routilux_std.transform import Filter, Map, Split
from routilux_std.validation import Validate
from std_http_server import ScriptedServer

from routilux_kernel import ExecutionStatus, Flow, JobState, Routine, Runtime

WAIT = 20.0


class Feed(Routine):
    """Entry routine: emits each record of entry_params['records'] (as one record each)."""

    def __init__(self) -> None:
        super().__init__()
        self.add_slot("trigger")
        self.add_event("out", optional=("record", "records"))

    def logic(self, slot_data: Any, policy_message: Any, job_state: JobState) -> None:
        for params in slot_data["trigger"]:
            if params.get("chunk"):
                self.emit("out", records=params["records"])
            else:
                for record in params["records"]:
                    self.emit("out", record=record)


class Collect(Routine):
    """Appends every item it receives, per slot, to shared_log."""

    def __init__(self, *slots: str) -> None:
        super().__init__()
        for slot in slots or ("in",):
            self.add_slot(slot)

    def logic(self, slot_data: Any, policy_message: Any, job_state: JobState) -> None:
        for slot, items in slot_data.items():
            for item in items:
                job_state.shared_log.append((slot, item))


def configured(routine: Routine, **config: Any) -> Routine:
    routine.set_config(**config)
    return routine


def chain(*steps: tuple[str, Routine, str, str]) -> Flow:
    """steps: (id, routine, event to the next, slot of the next)."""
    flow = Flow()
    for rid, routine, _, _ in steps:
        flow.add_routine(routine, rid)
    for (rid, _, event, _), (next_id, _, _, slot) in zip(steps, steps[1:], strict=False):
        flow.connect(rid, event, next_id, slot)
    return flow


@pytest.fixture(scope="module")
def runtime() -> Runtime:
    with Runtime(thread_pool_size=4, executor="thread") as shared:
        yield shared


def run(runtime: Runtime, flow: Flow, params: dict[str, Any] | None = None) -> JobState:
    job = runtime.exec(flow, params or {})
    assert job.wait(WAIT)
    return job


def collected(job: JobState, slot: str = "in") -> list[Any]:
    return [item for name, item in job.shared_log if name == slot]


def test_every_routine_documents_slots_events_and_a_typed_schema() -> None:
    for routine_class in ROUTINES:
        assert routine_class.registered_name.startswith("std.")
        assert (routine_class.__doc__ or "").strip()
        for key, spec in routine_class.config_schema.items():
            assert spec.get("description"), (routine_class, key)
            assert "type" in spec, (routine_class, key)


def test_map_filter_keep_chunks_as_chunks(runtime: Runtime) -> None:
    flow = chain(
        ("feed", Feed(), "out", ""),
        ("map", configured(Map(), fields={"n": "a.b", "double": "[a.b, a.b]"}), "out", "in"),
        ("keep", configured(Filter(), condition="n > `1`"), "passed", "in"),
        ("sink", Collect(), "", "in"),
    )
    records = [{"a": {"b": 1}}, {"a": {"b": 2}}, {"a": {"b": 3}}]
    job = run(runtime, flow, {"records": records, "chunk": True})
    assert job.status == ExecutionStatus.COMPLETED
    assert collected(job) == [{"records": [{"n": 2, "double": [2, 2]}, {"n": 3, "double": [3, 3]}]}]


def test_router_first_and_all_match_with_default(runtime: Runtime) -> None:
    routes = [
        {"name": "small", "when": "n < `5`"},
        {"name": "even", "when": "n == `2` || n == `6`"},
    ]
    for mode, expected in (
        ("first", {"small": [1, 2], "even": [6], "default": [7]}),
        ("all", {"small": [1, 2], "even": [2, 6], "default": [7]}),
    ):
        router = configured(Router(), routes=routes, mode=mode)
        flow = Flow()
        flow.add_routine(Feed(), "feed")
        flow.add_routine(router, "route")
        flow.add_routine(Collect("small", "even", "default"), "sink")
        flow.connect("feed", "out", "route", "in")
        for name in ("small", "even", "default"):
            flow.connect("route", name, "sink", name)
        job = run(runtime, flow, {"records": [{"n": n} for n in (1, 2, 6, 7)]})
        got = {name: [item["record"]["n"] for item in collected(job, name)] for name in expected}
        assert got == expected, mode


def test_split_gives_index_and_count(runtime: Runtime) -> None:
    flow = chain(
        ("feed", Feed(), "out", ""),
        ("split", configured(Split(), items="tags"), "item", "in"),
        ("sink", Collect(), "", "in"),
    )
    job = run(runtime, flow, {"records": [{"tags": ["x", "y"]}]})
    assert [(i["record"], i["index"], i["count"]) for i in collected(job)] == [
        ("x", 0, 2),
        ("y", 1, 2),
    ]


def test_batch_by_size_then_flushes_the_rest_at_the_end(runtime: Runtime) -> None:
    flow = chain(
        ("feed", Feed(), "out", ""),
        ("batch", configured(Batch(), size=2), "batch", "in"),
        ("sink", Collect(), "", "in"),
    )
    job = run(runtime, flow, {"records": [1, 2, 3, 4, 5]})
    batches = [(item["records"], item["reason"]) for item in collected(job)]
    assert batches == [([1, 2], "size"), ([3, 4], "size"), ([5], "end")]


def test_batch_by_time_emits_a_short_batch_while_the_job_is_still_busy(runtime: Runtime) -> None:
    release = threading.Event()

    class Slow(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.add_slot("trigger")
            self.add_event("out", ("record",))

        def logic(self, slot_data: Any, message: Any, job_state: JobState) -> None:
            self.emit("out", record="early")
            assert release.wait(WAIT)  # held until the time batch was seen downstream
            self.emit("out", record="late")

    class Release(Collect):
        def logic(self, slot_data: Any, message: Any, job_state: JobState) -> None:
            super().logic(slot_data, message, job_state)
            release.set()

    flow = chain(
        ("slow", Slow(), "out", ""),
        ("batch", configured(Batch(), size=10, seconds=0.05), "batch", "in"),
        ("sink", Release(), "", "in"),
    )
    job = run(runtime, flow)
    batches = [(item["records"], item["reason"]) for item in collected(job)]
    # the timer, not the end of the job, delivers "late" too: its wake-up keeps the job open
    assert batches == [(["early"], "time"), (["late"], "time")]


def test_join_merges_n_inputs_from_config(runtime: Runtime) -> None:
    join = configured(Join(), inputs=3, merge="list")
    flow = Flow()
    for index in range(3):
        flow.add_routine(Feed(), f"feed_{index}")
    flow.add_routine(join, "join")
    flow.add_routine(Collect(), "sink")
    for index in range(3):
        flow.connect(f"feed_{index}", "out", "join", f"in_{index}")
    flow.connect("join", "joined", "sink", "in")
    job = runtime.exec(flow, {"records": ["v"]}, entry_routine_id=["feed_0", "feed_1", "feed_2"])
    assert job.wait(WAIT)
    assert collected(job) == [{"values": ["v", "v", "v"], "missing": [], "complete": True}]


def test_join_timeout_emits_what_arrived_and_names_what_is_missing(runtime: Runtime) -> None:
    release = threading.Event()

    class Late(Feed):
        def logic(self, slot_data: Any, message: Any, job_state: JobState) -> None:
            assert release.wait(WAIT)  # arrives only after the join timed out

    class Release(Collect):
        def logic(self, slot_data: Any, message: Any, job_state: JobState) -> None:
            super().logic(slot_data, message, job_state)
            release.set()

    join = configured(Join(), inputs=["fast", "late"], timeout=0.05)
    flow = Flow()
    flow.add_routine(Feed(), "fast")
    flow.add_routine(Late(), "late")
    flow.add_routine(join, "join")
    flow.add_routine(Release(), "sink")
    flow.connect("fast", "out", "join", "fast")
    flow.connect("late", "out", "join", "late")
    flow.connect("join", "joined", "sink", "in")
    job = runtime.exec(flow, {"records": [1]}, entry_routine_id=["fast", "late"])
    assert job.wait(WAIT)
    assert collected(job) == [{"values": {"fast": 1}, "missing": ["late"], "complete": False}]


def test_aggregate_merges_counts_after_a_batch_flush(runtime: Runtime) -> None:
    flow = chain(
        ("feed", Feed(), "out", ""),
        ("batch", configured(Batch(), size=2), "batch", "in"),
        ("total", configured(Aggregate(), operation="sum"), "aggregated", "in"),
        ("sink", Collect(), "", "in"),
    )
    job = run(runtime, flow, {"records": [1, 2, 3, 4, 5]})
    # the last short batch ([5]) is flushed at the end and still reaches the aggregate
    assert collected(job) == [{"value": 15, "records": 5}]


def test_validate_with_a_pydantic_model_and_a_json_schema(runtime: Runtime) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    records = [{"order_id": "1", "qty": "2"}, {"order_id": "x", "qty": 1}]
    for config, valid in (
        ({"model": "std_models:Order"}, {"order_id": 1, "qty": 2}),
        ({"schema": {"properties": {"order_id": {"pattern": "^[0-9]+$"}}}}, records[0]),
    ):
        flow = Flow()
        flow.add_routine(Feed(), "feed")
        flow.add_routine(configured(Validate(), **config), "check")
        flow.add_routine(Collect("valid", "invalid"), "sink")
        flow.connect("feed", "out", "check", "in")
        flow.connect("check", "valid", "sink", "valid")
        flow.connect("check", "invalid", "sink", "invalid")
        job = run(runtime, flow, {"records": records})
        assert collected(job, "valid") == [{"record": valid}]
        (invalid,) = collected(job, "invalid")
        assert invalid["record"] == records[1]
        assert len(invalid["errors"]) == 1 and invalid["errors"][0].startswith("order_id: ")


def test_debounce_emits_the_last_record_of_a_burst(runtime: Runtime) -> None:
    flow = chain(
        ("feed", Feed(), "out", ""),
        ("quiet", configured(Debounce(), seconds=0.05), "out", "in"),
        ("sink", Collect(), "", "in"),
    )
    job = run(runtime, flow, {"records": [1, 2, 3]})
    assert collected(job) == [{"record": 3}]


def test_rate_limit_spaces_activations_within_a_job(runtime: Runtime) -> None:
    flow = chain(
        ("feed", Feed(), "out", ""),
        ("pace", configured(RateLimit(), per_second=20), "out", "in"),
        ("sink", Collect(), "", "in"),
    )
    job = run(runtime, flow, {"records": [1, 2, 3, 4]})
    assert [item["record"] for item in collected(job)] == [1, 2, 3, 4]
    # four activations at most 20 per second: at least three intervals of 50 ms
    assert job.finished_at - job.started_at >= 3 / 20


def test_extract_json_yaml_and_code_from_llm_text(runtime: Runtime) -> None:
    text = 'Sure!\n```json\n{"a": 1}\n```\nand\n```python\nprint(1)\n```\n'
    cases = (
        ({"format": "json"}, {"a": 1}),
        ({"format": "yaml"}, {"a": 1}),
        ({"format": "code", "language": "python"}, ["print(1)\n"]),
    )
    for config, value in cases:
        flow = chain(
            ("feed", Feed(), "out", ""),
            ("extract", configured(Extract(), **config), "extracted", "in"),
            ("sink", Collect(), "", "in"),
        )
        job = run(runtime, flow, {"records": [{"text": text}]})
        assert [item["value"] for item in collected(job)] == [value], config


def test_shell_captures_output_and_fails_on_a_non_zero_exit(runtime: Runtime) -> None:
    ok = configured(ShellCommand(), args=[sys.executable, "-c", "print('hi {name}')"])
    flow = chain(
        ("feed", Feed(), "out", ""), ("sh", ok, "completed", "in"), ("sink", Collect(), "", "in")
    )
    job = run(runtime, flow, {"records": [{"name": "ada"}]})
    (done,) = collected(job)
    assert (done["exit_code"], done["stdout"]) == (0, "hi ada\n")
    bad = configured(ShellCommand(), args=[sys.executable, "-c", "import sys; sys.exit(3)"])
    flow = chain(
        ("feed", Feed(), "out", ""), ("sh", bad, "completed", "in"), ("sink", Collect(), "", "in")
    )
    job = run(runtime, flow, {"records": [{}]})
    assert job.status == ExecutionStatus.FAILED
    assert type(job.exception).__name__ == "ShellCommandError"
    assert str(job.error).startswith("routine 'sh' (std.shell): command")
    assert "exited with code 3" in str(job.error)


def test_http_timeout_is_a_clear_error(runtime: Runtime, http_server: ScriptedServer) -> None:
    http_server.delays["/items/1"] = threading.Event()
    fetch = configured(HttpRequest(), url=http_server.base + "/items/{id}", timeout=0.2)
    flow = chain(
        ("feed", Feed(), "out", ""),
        ("fetch", fetch, "response", "in"),
        ("sink", Collect(), "", "in"),
    )
    job = run(runtime, flow, {"records": [{"id": 1}]})
    assert job.status == ExecutionStatus.FAILED
    assert type(job.exception).__name__ == "HttpTimeoutError"
    assert str(job.error) == (
        f"routine 'fetch' (std.http_request): GET {http_server.base}/items/1 "
        "timed out after 0.2s (config key 'timeout'): ReadTimeout"
    )


@pytest.mark.parametrize(
    ("routine", "config", "message"),
    [
        (
            Map(),
            {"fields": {"x": "a.["}},
            "routine 'bad' (std.map): config key 'fields.x' is not a valid JMESPath "
            "expression 'a.['",
        ),
        (
            Map(),
            {"fields": {}, "feilds": 1},
            "routine 'bad' (std.map): unknown config key 'feilds'; its config keys: "
            "drop_missing, fields, keep_input",
        ),
        (
            Filter(),
            {"condition": 3},
            "routine 'bad' (std.filter): config key 'condition' expected string, got int 3",
        ),
        (
            Batch(),
            {"size": "2"},
            "routine 'bad' (std.batch): config key 'size' expected integer, got str '2'",
        ),
        (
            Validate(),
            {"model": "no_such_module:Model"},
            "routine 'bad' (std.validate): config key 'model': cannot import 'no_such_module'",
        ),
        (
            Join(),
            {"inputs": 2, "mode": "most"},
            "routine 'bad' (std.join): config key 'mode' must be one of 'all', 'any', "
            "'n_of_m', got 'most'",
        ),
    ],
)
def test_bad_config_names_routine_key_and_expectation(
    runtime: Runtime, routine: Routine, config: dict[str, Any], message: str
) -> None:
    routine.set_config(**config)
    flow = Flow()
    flow.add_routine(Feed(), "feed")
    flow.add_routine(routine, "bad")
    flow.connect("feed", "out", "bad", next(iter(routine.slots)))
    job = run(runtime, flow, {"records": [{"a": 1}]})
    assert job.status == ExecutionStatus.FAILED
    assert message in str(job.error)


def test_missing_file_and_bad_csv_row_name_file_and_line(runtime: Runtime, tmp_path: Path) -> None:
    flow = chain(
        ("read", configured(ReadLines(), path=str(tmp_path / "nope.txt")), "out", ""),
        ("sink", Collect(), "", "in"),
    )
    job = run(runtime, flow)
    assert (
        f"routine 'read' (std.read_lines): config key 'path': "
        f"file '{tmp_path / 'nope.txt'}' does not exist" in str(job.error)
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n3\n")
    flow = chain(
        ("read", configured(ReadCsv(), path=str(bad)), "out", ""), ("sink", Collect(), "", "in")
    )
    job = run(runtime, flow)
    assert job.status == ExecutionStatus.FAILED
    assert f"routine 'read' (std.read_csv): {bad}, line 3: expected 2 fields (a, b), got 1" in str(
        job.error
    )
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"a": 1}\n{oops\n')
    flow = chain(
        ("read", configured(ReadJsonLines(), path=str(bad_json)), "out", ""),
        ("sink", Collect(), "", "in"),
    )
    job = run(runtime, flow)
    assert f"{bad_json}, line 2: not JSON" in str(job.error)


def test_writers_are_atomic_and_a_failed_job_writes_nothing(
    runtime: Runtime, tmp_path: Path
) -> None:
    target = tmp_path / "out" / "{job_id}.csv"
    ok = chain(
        ("feed", Feed(), "out", ""),
        ("write", configured(WriteCsv(), path=str(target)), "written", "in"),
        ("sink", Collect(), "", "in"),
    )
    job = run(runtime, ok, {"records": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]})
    written = tmp_path / "out" / f"{job.job_id}.csv"
    assert written.read_bytes() == b"a,b\r\n1,x\r\n2,y\r\n"
    assert collected(job) == [{"path": str(written), "records": 2}]

    existing = tmp_path / "keep.jsonl"
    existing.write_text('{"old": true}\n')

    class Boom(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.add_slot("in")

        def logic(self, slot_data: Any, message: Any, job_state: JobState) -> None:
            raise RuntimeError("downstream broke")

    flow = Flow()
    flow.add_routine(Feed(), "feed")
    flow.add_routine(configured(WriteJsonLines(), path=str(existing)), "write")
    flow.add_routine(Boom(), "boom")
    flow.connect("feed", "out", "write", "in")
    flow.connect("feed", "out", "boom", "in")
    job = run(runtime, flow, {"records": [{"new": 1}]})
    assert job.status == ExecutionStatus.FAILED
    assert existing.read_text() == '{"old": true}\n'
    bad = chain(
        ("feed", Feed(), "out", ""),
        ("write", configured(WriteJsonLines(), path=str(existing)), "written", "in"),
        ("sink", Collect(), "", "in"),
    )
    job = run(runtime, bad, {"records": [{"ok": 1}, {"set": {1, 2}}]})
    assert "record 1 cannot be written as JSON" in str(job.error)
    assert existing.read_text() == '{"old": true}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.jsonl", "out"]
