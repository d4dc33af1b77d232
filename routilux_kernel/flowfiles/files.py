"""Flow files on disk: read YAML or JSON (by extension), build the Flow, save one back.

The format is described in docs/flow-files.md; the checks live in :mod:`flow_spec`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pluggy

from routilux_kernel.core.flow import Flow
from routilux_kernel.engine.config import ConfigError, ProjectConfig, find_config
from routilux_kernel.flowfiles import FlowFileError, flow_from_dict, flow_to_dict
from routilux_kernel.flowfiles.document_limits import (
    MAX_NESTING,
    OversizedInteger,
    document_problems,
    json_nesting_problem,
    read_json_integer,
    yaml_graph_problem,
)
from routilux_kernel.flowfiles.rendering import one_line, quoted, source_text

__all__ = [
    "FLOW_FILE_SUFFIXES",
    "FlowFileError",
    "add_import_paths",
    "load_flow_file",
    "read_flow_data",
    "registered_only_configured",
    "save_flow_file",
]

#: Suffix -> format.
FLOW_FILE_SUFFIXES = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}
REGISTERED_ONLY_KEY = "registered_only"
_YAML_MISSING = (
    "reading YAML needs PyYAML, which is not installed: pip install PyYAML "
    "(or write the flow as .json)"
)


def read_flow_data(path: str | os.PathLike[str]) -> Any:
    """The parsed content of a flow file; FlowFileError names the file and what is wrong."""
    path = Path(path)
    kind = FLOW_FILE_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        suffix = path.suffix or "(none)"
        raise FlowFileError(
            [
                f"{source_text(path)}: unknown file type {quoted(suffix)}; "
                "expected .yaml, .yml or .json"
            ]
        )
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FlowFileError([f"{source_text(path)}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FlowFileError([f"{source_text(path)}: cannot read: {exc}"]) from None
    data = _parse_yaml(path, text) if kind == "yaml" else _parse_json(path, text)
    problems = document_problems(data)
    if problems:
        raise FlowFileError([f"{source_text(path)}: {problem}" for problem in problems])
    return data


def load_flow_file(
    path: str | os.PathLike[str],
    *,
    plugin_manager: pluggy.PluginManager | None = None,
    registered_only: bool | None = None,
    config: ProjectConfig | None = None,
) -> Flow:
    """Read and build the flow in ``path``; FlowFileError lists every problem in it.

    ``registered_only=None`` takes ``registered_only`` from the project config (routilux.toml
    or ``[tool.routilux]``). Unless imports are switched off, the file's directory and the
    current directory are added to the end of ``sys.path`` so ``module:Class`` names next to
    the file resolve.
    """
    path = Path(path)
    if registered_only is None:
        registered_only = registered_only_configured(config)
    data = read_flow_data(path)
    if not registered_only:
        add_import_paths(path)
    flow = flow_from_dict(
        data,
        source=str(path),
        plugin_manager=plugin_manager,
        registered_only=registered_only,
        default_flow_id=path.stem,
    )
    flow.source_file = str(path.resolve())
    return flow


def registered_only_configured(config: ProjectConfig | None = None) -> bool:
    """The ``registered_only`` switch of the project config (False when absent)."""
    config = config if config is not None else find_config()
    value = config.raw.get(REGISTERED_ONLY_KEY, False)
    if not isinstance(value, bool):
        raise ConfigError(
            f"{config.source}: key {REGISTERED_ONLY_KEY} must be true or false, got {value!r}"
        )
    return value


def add_import_paths(flow_file: str | os.PathLike[str]) -> list[str]:
    """Append the flow file's directory and the current directory to ``sys.path``.

    Appended, not prepended, so a file next to the flow never shadows an installed module.
    Returns the entries that were added.
    """
    added = []
    for directory in (Path(flow_file).resolve().parent, Path.cwd().resolve()):
        entry = str(directory)
        if entry not in sys.path:
            sys.path.append(entry)
            added.append(entry)
    return added


def save_flow_file(flow: Flow, path: str | os.PathLike[str]) -> None:
    """Write ``flow.to_dict()`` as YAML or JSON, chosen by the extension of ``path``."""
    path = Path(path)
    kind = FLOW_FILE_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"{path}: unknown flow file type; expected .yaml, .yml or .json")
    data = flow_to_dict(flow)
    if kind == "json":
        text = json.dumps(data, indent=2) + "\n"
    else:
        yaml = _yaml_module(path)
        text = yaml.safe_dump(data, sort_keys=False)
    path.write_text(text, encoding="utf-8")


def _parse_json(path: Path, text: str) -> Any:
    too_deep = json_nesting_problem(text)
    if too_deep is not None:
        raise FlowFileError([f"{source_text(path)}: {too_deep}"])
    duplicates: list[str] = []

    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                duplicates.append(key)
            seen[key] = value
        return seen

    try:
        data = json.loads(text, object_pairs_hook=unique_keys, parse_int=read_json_integer)
    except json.JSONDecodeError as exc:
        raise FlowFileError(
            [f"{source_text(path)}: line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}"]
        ) from None
    except RecursionError:  # only when called with little stack left: the depth is checked
        raise FlowFileError(
            [f"{source_text(path)}: nested too deeply to read (at most {MAX_NESTING} levels)"]
        ) from None
    if duplicates:
        raise FlowFileError(
            [
                f"{source_text(path)}: key {quoted(key)} appears twice in one mapping; keys "
                "must be unique"
                for key in dict.fromkeys(duplicates)
            ]
        )
    return data


def _parse_yaml(path: Path, text: str) -> Any:
    yaml = _yaml_module(path)
    where = source_text(path)

    class BoundedLoader(yaml.SafeLoader):  # type: ignore[name-defined]
        """Safe loading (no Python objects), bounded nesting, and no silently repeated key."""

        nesting = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            # The composer recurses once per level: stop it long before the stack does.
            self.nesting += 1
            try:
                if self.nesting > MAX_NESTING:
                    mark = self.peek_event().start_mark
                    raise FlowFileError(
                        [
                            f"{where}: line {mark.line + 1}, column {mark.column + 1}: nested "
                            f"more than {MAX_NESTING} levels deep; a flow file may nest "
                            f"mappings and lists at most {MAX_NESTING} levels"
                        ]
                    )
                return super().compose_node(parent, index)
            finally:
                self.nesting -= 1

        def construct_yaml_int(self, node: Any) -> Any:
            try:
                return super().construct_yaml_int(node)
            except ValueError:  # more digits than the interpreter converts
                return OversizedInteger(len(str(node.value).lstrip("+-").replace("_", "")))

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                try:
                    repeated = key in seen
                except TypeError:
                    continue  # an unhashable key; the base class reports it
                if repeated:
                    mark = key_node.start_mark
                    raise FlowFileError(
                        [
                            f"{where}: line {mark.line + 1}, column {mark.column + 1}: key "
                            f"{quoted(key)} appears twice in one mapping; keys must be unique"
                        ]
                    )
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    BoundedLoader.add_constructor("tag:yaml.org,2002:int", BoundedLoader.construct_yaml_int)
    loader = BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        problem = yaml_graph_problem(node)
        if problem is not None:
            raise FlowFileError([f"{where}: {problem}"])
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise FlowFileError([f"{where}: {at}invalid YAML: {one_line(reason)}"]) from None
    except RecursionError:  # only when called with little stack left: the depth is checked
        raise FlowFileError(
            [f"{where}: nested too deeply to read (at most {MAX_NESTING} levels)"]
        ) from None
    finally:
        loader.dispose()


def _yaml_module(path: Path) -> Any:
    try:
        import yaml
    except ImportError:
        raise FlowFileError([f"{source_text(path)}: {_YAML_MISSING}"]) from None
    return yaml
