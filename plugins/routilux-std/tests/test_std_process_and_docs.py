"""A std pipeline on the process executor, the entry-point registration, and docs/routines.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from routilux_std.grouping import Batch, Join
from routilux_std.reference import render
from routilux_std.sinks import WriteJsonLines
from routilux_std.sources import ReadCsv
from routilux_std.transform import Filter, Map
from routilux_std.validation import Validate

from routilux_kernel import ExecutionStatus, Flow, Runtime, create_plugin_manager

ROOT = Path(__file__).resolve().parents[3]


def test_docs_routines_md_is_generated_from_the_metadata() -> None:
    current = (ROOT / "docs" / "routines.md").read_text()
    assert current == render(), (
        "docs/routines.md is out of date: run "
        "`.venv/bin/python -m routilux_std.reference > docs/routines.md`"
    )


def test_routines_are_registered_through_the_entry_point_only() -> None:
    from routilux_kernel.hooks.installed import describe_plugins

    plugins = {p["name"]: p for p in describe_plugins(create_plugin_manager())}
    std = plugins["std"]
    assert std["distribution"] == "routilux-std"
    assert std["hooks"] == ["register_routines"]
    assert "std.map" in std["registered"]["routines"]
    kernel_sources = "".join(p.read_text() for p in (ROOT / "routilux_kernel").rglob("*.py"))
    assert "routilux_std" not in kernel_sources
    listing = subprocess.run(
        [str(Path(sys.executable).parent / "routilux"), "routines"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert "std.join" in listing and "std.http_request" in listing


@pytest.fixture(scope="module")
def process_runtime() -> Runtime:
    with Runtime(thread_pool_size=2, executor="process") as runtime:
        yield runtime


def test_csv_pipeline_with_join_on_the_process_executor(
    process_runtime: Runtime, tmp_path: Path
) -> None:
    source = tmp_path / "in.csv"
    source.write_text("k,v\n" + "".join(f"{i},{i * 10}\n" for i in range(25)))
    read, check, shape, keep, batch, join, write = (
        ReadCsv(),
        Validate(),
        Map(),
        Filter(),
        Batch(),
        Join(),
        WriteJsonLines(),
    )
    read.set_config(path=str(source), chunk_size=4)
    check.set_config(schema={"required": ["k", "v"]})
    shape.set_config(fields={"k": "to_int(k)", "v": "to_int(v)"})
    keep.set_config(condition="k >= `5`")
    batch.set_config(size=3)
    join.set_config(inputs=["rows", "summary"], merge="dict")
    write.set_config(path=str(tmp_path / "{job_id}.jsonl"))
    flow = Flow()
    for rid, routine in (
        ("read", read),
        ("check", check),
        ("shape", shape),
        ("keep", keep),
        ("batch", batch),
        ("join", join),
        ("write", write),
    ):
        flow.add_routine(routine, rid)
    flow.connect("read", "out", "check", "in")
    flow.connect("check", "valid", "shape", "in")
    flow.connect("shape", "out", "keep", "in")
    flow.connect("keep", "passed", "batch", "in")
    flow.connect("batch", "batch", "write", "in")
    flow.connect("read", "done", "join", "summary")
    flow.connect("write", "written", "join", "rows")
    job = process_runtime.exec(flow, {})
    assert job.wait(60)
    assert job.status == ExecutionStatus.COMPLETED, job.error
    lines = (tmp_path / f"{job.job_id}.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [{"k": i, "v": i * 10} for i in range(5, 25)]
    assert not job.unconsumed


def test_bad_config_fails_clearly_on_the_process_executor(
    process_runtime: Runtime, tmp_path: Path
) -> None:
    read, shape = ReadCsv(), Map()
    source = tmp_path / "in.csv"
    source.write_text("k\n1\n")
    read.set_config(path=str(source))
    shape.set_config(fields={"k": "k[?"})
    flow = Flow()
    flow.add_routine(read, "read")
    flow.add_routine(shape, "shape")
    flow.connect("read", "out", "shape", "in")
    job = process_runtime.exec(flow, {})
    assert job.wait(60)
    assert job.status == ExecutionStatus.FAILED
    assert "routine 'shape' (std.map): config key 'fields.k' is not a valid JMESPath" in str(
        job.error
    )
