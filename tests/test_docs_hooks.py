"""docs/plugins.md documents every hook (with a working example) and every plugin switch."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from routilux_kernel.hooks import manager as plugins
from routilux_kernel.hooks import specs as hookspecs

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
HOOKS = sorted(
    name for name in vars(hookspecs) if hasattr(getattr(hookspecs, name), "routilux_spec")
)
HEADING = re.compile(r"^### `?(\w+)\(([^)]*)\)`?\s*$", re.MULTILINE)


def hook_sections() -> dict[str, tuple[str, str]]:
    """hook name -> (arguments as written in its heading, the text up to the next heading)."""
    text = DOC.read_text()
    matches = list(HEADING.finditer(text))
    sections = {}
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        following = re.search(r"^#{1,3} ", text[match.end() : end], re.MULTILINE)
        if following is not None:
            end = match.end() + following.start()
        sections[match.group(1)] = (match.group(2), text[match.end() : end])
    return sections


def test_every_documented_hook_exists() -> None:
    assert set(hook_sections()) <= set(HOOKS), "docs/plugins.md documents hooks that do not exist"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_documented_with_its_arguments_and_an_example(hook: str) -> None:
    sections = hook_sections()
    assert hook in sections, f"hook {hook!r} has no '### {hook}(...)' section in docs/plugins.md"
    arguments, body = sections[hook]
    expected = list(inspect.signature(getattr(hookspecs, hook)).parameters)
    assert [a.strip() for a in arguments.split(",") if a.strip()] == expected
    examples = re.findall(r"```python\n(.*?)```", body, re.DOTALL)
    assert examples, f"the {hook} section has no python example"
    example = "\n".join(examples)
    assert "@hookimpl" in example and re.search(rf"def {hook}\(", example), (
        f"the {hook} example does not implement {hook} with @hookimpl"
    )
    for code in examples:
        compile(code, f"docs/plugins.md ({hook})", "exec")


def test_switches_and_entry_point_group_documented() -> None:
    text = DOC.read_text()
    for name in (
        plugins.LOAD_PLUGINS_ENV,
        plugins.DISABLE_PLUGINS_ENV,
        plugins.TRACE_PLUGINS_ENV,
        plugins.STRICT_PLUGINS_ENV,
        f"[project.entry-points.{plugins.ENTRY_POINT_GROUP}]",
        "create_plugin_manager",
        "describe_plugins",
        "plugin_load_failures",
        "create_routine",
    ):
        assert name in text, f"docs/plugins.md does not mention {name}"
