"""Flow files on disk: YAML and JSON, parse errors, import paths, the registered_only config."""

from __future__ import annotations

import json
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from routilux_kernel import Runtime
from routilux_kernel.engine.config import ConfigError
from routilux_kernel.flowfiles import flow_entry, flow_params
from routilux_kernel.flowfiles.files import (
    FlowFileError,
    add_import_paths,
    load_flow_file,
    read_flow_data,
    save_flow_file,
)

ROUTINES_SOURCE = """
from routilux_kernel import Routine

class Shout(Routine):
    def __init__(self):
        super().__init__()
        self.set_config(suffix="!")
        self.add_slot("trigger")
        self.add_event("said", ["text"])

    def logic(self, slot_data, message, job_state):
        for item in slot_data["trigger"]:
            self.emit("said", text=item["text"].upper() + self.get_config("suffix"))

class Keep(Routine):
    def __init__(self):
        super().__init__()
        self.add_slot("input")

    def logic(self, slot_data, message, job_state):
        job_state.shared_log.extend(item["text"] for item in slot_data["input"])
"""


@pytest.fixture
def module(tmp_path: Path) -> str:
    """A routines module next to the flow files, with a name no other test uses."""
    name = f"file_routines_{uuid.uuid4().hex[:10]}"
    (tmp_path / f"{name}.py").write_text(ROUTINES_SOURCE)
    return name


def flow_data(module: str) -> dict[str, Any]:
    return {
        "routines": {
            "shout": {"use": f"{module}:Shout", "config": {"suffix": "?!"}},
            "keep": {"use": f"{module}:Keep"},
        },
        "connections": ["shout.said -> keep.input"],
        "params": {"text": "hello"},
    }


def run(flow: Any) -> Any:
    with Runtime() as runtime:
        return runtime.run(flow, flow_params(flow), entry_routine_id=flow_entry(flow), timeout=5)


def test_yaml_and_json_files_give_the_same_flow(tmp_path: Path, module: str) -> None:
    yaml_file = tmp_path / "shout.yaml"
    yaml_file.write_text(
        textwrap.dedent(f"""
        # comments are fine in YAML
        routines:
          shout:
            use: {module}:Shout
            config: {{suffix: "?!"}}
          keep: {{use: "{module}:Keep"}}
        connections:
          - shout.said -> keep.input
        params:
          text: hello
    """)
    )
    json_file = tmp_path / "shout.json"
    json_file.write_text(json.dumps(flow_data(module)))
    from_yaml, from_json = load_flow_file(yaml_file), load_flow_file(json_file)
    assert from_yaml.flow_id == from_json.flow_id == "shout"  # the file name, without suffix
    assert from_yaml.to_dict() == from_json.to_dict()
    assert run(from_yaml).shared_log == run(from_json).shared_log == ["HELLO?!"]


def test_module_next_to_the_flow_file_is_found(tmp_path: Path, module: str) -> None:
    folder = tmp_path / "flows"
    folder.mkdir()
    (tmp_path / f"{module}.py").rename(folder / f"{module}.py")
    path = folder / "f.json"
    path.write_text(json.dumps(flow_data(module)))
    assert str(folder) not in sys.path
    flow = load_flow_file(path)
    assert str(folder.resolve()) in sys.path
    assert sys.path.index(str(folder.resolve())) > 0  # appended: never shadows installed modules
    assert run(flow).shared_log == ["HELLO?!"]
    assert add_import_paths(path) == []  # already there: nothing added twice


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("f.txt", "{}", "unknown file type '.txt'; expected .yaml, .yml or .json"),
        ("f.json", '{"routines": {\n  "a": }', "line 2, column 8: invalid JSON"),
        ("f.yaml", "routines:\n  a: [1, 2\n", "invalid YAML"),
        (
            "f.yaml",
            "routines:\n  a: {use: x}\n  a: {use: y}\n",
            "line 3, column 3: key 'a' appears twice",
        ),
        ("f.json", '{"routines": {"a": 1, "a": 2}}', "key 'a' appears twice"),
    ],
)
def test_unreadable_files_name_the_file_and_the_place(
    tmp_path: Path, name: str, content: str, expected: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(FlowFileError) as caught:
        read_flow_data(path)
    [problem] = caught.value.problems
    assert problem.startswith(f"{path}: ")
    assert expected in problem


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FlowFileError, match="no such file"):
        load_flow_file(tmp_path / "absent.yaml")


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(FlowFileError, match=r"list\.yaml: \(top level\): expected a mapping"):
        load_flow_file(path)


def test_yaml_without_pyyaml_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "yaml", None)  # makes `import yaml` fail
    path = tmp_path / "f.yaml"
    path.write_text("routines: {}\n")
    with pytest.raises(FlowFileError, match=r"pip install PyYAML"):
        read_flow_data(path)


def test_yaml_is_loaded_safely(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text("routines: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(FlowFileError, match="invalid YAML"):
        read_flow_data(path)


def test_registered_only_from_the_config_file(
    tmp_path: Path, module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "f.json"
    path.write_text(json.dumps(flow_data(module)))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "routilux.toml").write_text("registered_only = true\n")
    with pytest.raises(FlowFileError, match="imports are switched off"):
        load_flow_file(path)
    assert module not in sys.modules
    (tmp_path / "routilux.toml").unlink()
    (tmp_path / "pyproject.toml").write_text("[tool.routilux]\nregistered_only = 'yes'\n")
    with pytest.raises(ConfigError, match="registered_only must be true or false"):
        load_flow_file(path)
    (tmp_path / "pyproject.toml").write_text("[tool.routilux]\nregistered_only = false\n")
    assert run(load_flow_file(path)).shared_log == ["HELLO?!"]


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_save_then_load_gives_the_same_flow(tmp_path: Path, module: str, suffix: str) -> None:
    source = tmp_path / "source.json"
    source.write_text(json.dumps({**flow_data(module), "entry": ["shout"]}))
    flow = load_flow_file(source)
    target = tmp_path / f"saved{suffix}"
    save_flow_file(flow, target)
    again = load_flow_file(target)
    assert again.to_dict() == flow.to_dict()
    assert run(again).shared_log == ["HELLO?!"]
