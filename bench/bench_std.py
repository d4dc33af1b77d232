"""routilux-std workloads: a large file through read -> map -> filter -> write JSON Lines.

S1 runs 1,000,000 lines (20,000 with --quick) through std.read_lines -> std.map ->
std.filter -> std.write_jsonl in one job, on the thread executor and on the process
executor with 2 workers. The floor is the same work as one plain Python loop in this
process: the same JMESPath expressions (compiled once), the same JSON encoding and the same
temp-file-and-rename write. Both outputs are checked line for line.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import jmespath
from routilux_std.expressions import OPTIONS
from routilux_std.sinks import WriteJsonLines
from routilux_std.sources import ReadLines
from routilux_std.transform import Filter, Map

from bench._harness import best_of, row, selected
from routilux_kernel import ExecutionStatus, Flow, Runtime

WORKLOADS = ["S1 std pipeline, thread", "S1 std pipeline, process x2"]

FIELDS = {"n": "line_number", "text": "upper(line)", "size": "length(line)"}
CONDITION = "size > `14`"


def _write_input(path: Path, lines: int) -> None:
    with open(path, "w") as handle:
        for index in range(lines):
            handle.write(f"line {index} {'alpha' if index % 3 else 'be'}\n")


def _plain_loop(source: Path, target: Path) -> int:
    compiled = {name: jmespath.compile(expr) for name, expr in FIELDS.items()}
    condition = jmespath.compile(CONDITION)
    encode = json.JSONEncoder(ensure_ascii=False).encode
    kept = 0
    handle = tempfile.NamedTemporaryFile(
        "w", dir=target.parent, prefix=".loop.", suffix=".tmp", delete=False
    )
    with handle, open(source) as lines:
        for number, line in enumerate(lines, 1):
            record = {"path": str(source), "line_number": number, "line": line.rstrip("\r\n")}
            shaped = {name: expr.search(record, options=OPTIONS) for name, expr in compiled.items()}
            if condition.search(shaped, options=OPTIONS):
                handle.write(encode(shaped) + "\n")
                kept += 1
    os.replace(handle.name, target)
    return kept


def _flow(source: Path, target: Path) -> Flow:
    read, shape, keep, write = ReadLines(), Map(), Filter(), WriteJsonLines()
    read.set_config(path=str(source), chunk_size=2000)
    shape.set_config(fields=FIELDS)
    keep.set_config(condition=CONDITION)
    write.set_config(path=str(target))
    flow = Flow("bench_std")
    for rid, routine in (("read", read), ("map", shape), ("filter", keep), ("write", write)):
        flow.add_routine(routine, rid)
    flow.connect("read", "out", "map", "in")
    flow.connect("map", "out", "filter", "in")
    flow.connect("filter", "passed", "write", "in")
    return flow


def run(quick: bool) -> list[dict[str, Any]]:
    lines = 20_000 if quick else 1_000_000
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        source = base / "input.txt"
        _write_input(source, lines)
        floor_target, ours_target = base / "loop.jsonl", base / "ours.jsonl"
        for workload, executor in zip(WORKLOADS, ("thread", "process"), strict=True):
            if not selected(workload):
                continue
            options = {"max_workers": 2} if executor == "process" else {}
            with Runtime(thread_pool_size=2, executor=executor, executor_options=options) as rt:
                rt.run(_flow(source, ours_target), {}, timeout=600)  # warm-up: workers, plan

                def ours(rt: Runtime = rt) -> float:
                    job = rt.exec(_flow(source, ours_target), {})
                    assert job.wait(600)
                    if job.status != ExecutionStatus.COMPLETED:
                        raise RuntimeError(f"bench_std job failed: {job.error}")
                    return job.finished_at - job.started_at

                def floor() -> float:
                    start = time.perf_counter()
                    _plain_loop(source, floor_target)
                    return time.perf_counter() - start

                floor_s, ours_s, samples = best_of(floor, ours, quick)
            if floor_target.read_bytes() != ours_target.read_bytes():
                raise RuntimeError("bench_std: the pipeline's output differs from the loop's")
            target = ">= 0.5x" if executor == "thread" else ">= 1.3x"
            result = row(
                workload,
                "lines/s",
                lines / ours_s,
                lines / floor_s,
                target,
                note=f"{lines:,} lines, chunks of 2000, {executor} executor",
            )
            result["samples_s"] = samples
            rows.append(result)
    return rows
