"""Registering routilux-std is a cheap class import; httpx, pydantic, jsonschema and PyYAML
come in only when a routine that needs them runs.

Each check runs in a fresh interpreter: this test session has imported everything long ago.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

HEAVY = ["httpx", "pydantic", "jsonschema", "yaml"]

# Registers every std routine through the plugin manager, then runs
# read_jsonl -> validate (JSON Schema) -> extract (YAML) -> write_jsonl, noting which heavy
# modules were imported after registering, and after running.
PROGRAM = """
import json, sys
from routilux_kernel import ExecutionStatus, Flow, Runtime
from routilux_kernel.hooks.installed import get_plugin_manager
from routilux_kernel.hooks.registry import registries_for

HEAVY = {heavy!r}
routines = registries_for(get_plugin_manager()).routines
after_registering = [m for m in HEAVY if m in sys.modules]

flow = Flow("lazy")
for routine_id, name, config in (
    ("read", "std.read_jsonl", {{"path": {source!r}}}),
    ("check", "std.validate", {{"schema": {{"type": "object", "required": ["text"]}}}}),
    ("parse", "std.extract", {{"format": "yaml"}}),
    ("write", "std.write_jsonl", {{"path": {target!r}}}),
):
    routine = routines.get(name)()
    routine.set_config(**config)
    flow.add_routine(routine, routine_id)
flow.connect("read", "out", "check", "in")
flow.connect("check", "valid", "parse", "in")
flow.connect("parse", "extracted", "write", "in")
with Runtime() as runtime:
    job = runtime.run(flow, {{}}, timeout=30)
after_running = [m for m in HEAVY if m in sys.modules]
print(json.dumps([len(routines), after_registering, str(job.status), after_running]))
"""


def test_registering_imports_no_heavy_dependency_and_running_imports_what_it_uses(
    tmp_path: Path,
) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text(json.dumps({"text": "name: ada\nage: 36"}) + "\n")
    program = PROGRAM.format(heavy=HEAVY, source=str(source), target=str(target))
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(program)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "ROUTILUX_LOAD_PLUGINS": "std"},
    )
    assert done.returncode == 0, done.stderr
    registered, after_registering, status, after_running = json.loads(done.stdout)
    assert registered >= 18
    assert after_registering == []
    assert status == "completed"
    # validate used a JSON Schema (not pydantic) and extract YAML; nothing made a request
    assert after_running == ["jsonschema", "yaml"]
    written = [json.loads(line) for line in target.read_text().splitlines()]
    assert [row["value"] for row in written] == [{"name": "ada", "age": 36}]
