"""require_component: a missing component skips a test, and fails it when CI requires it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from testsupport.components import KNOWN_COMPONENTS, require_component

REPOSITORY = Path(__file__).resolve().parents[2]

NEEDS_A_MISSING_COMPONENT = """
from testsupport.components import require_component

require_component("teleporter", available=False, how_to_install="apt-get install teleporter")


def test_teleport():
    pass
"""

NEEDS_A_KNOWN_MISSING_COMPONENT = """
from testsupport import components


def test_uses_postgres(monkeypatch):
    monkeypatch.setattr(components, "postgresql_bin_dir", lambda: None)
    components.require_component("postgresql")
"""


def run_pytest(tmp_path: Path, source: str, *, required: str | None) -> subprocess.CompletedProcess:
    (tmp_path / "test_sample.py").write_text(source)
    (tmp_path / "test_other.py").write_text("def test_needs_nothing():\n    pass\n")
    environment = {
        key: value for key, value in os.environ.items() if key != "ROUTILUX_REQUIRE_COMPONENTS"
    }
    environment["PYTHONPATH"] = str(REPOSITORY)
    if required is not None:
        environment["ROUTILUX_REQUIRE_COMPONENTS"] = required
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-rA", "-p", "no:cacheprovider", "."],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("required", [None, "0"])
def test_a_missing_component_skips_the_module_outside_ci(
    tmp_path: Path, required: str | None
) -> None:
    result = run_pytest(tmp_path, NEEDS_A_MISSING_COMPONENT, required=required)
    assert result.returncode == 0, result.stdout
    assert "1 passed, 1 skipped" in result.stdout
    assert (
        "component 'teleporter' is missing; install it with: apt-get install teleporter"
        in result.stdout
    )


def test_a_missing_component_fails_the_run_when_components_are_required(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, NEEDS_A_MISSING_COMPONENT, required="1")
    assert result.returncode == 2, result.stdout  # a collection error interrupts the run
    assert "skipped" not in result.stdout
    assert (
        "component 'teleporter' is missing; install it with: apt-get install teleporter "
        "(ROUTILUX_REQUIRE_COMPONENTS=1: required components never skip)" in result.stdout
    )


def test_a_known_component_names_its_install_command_when_it_fails_a_test(
    tmp_path: Path,
) -> None:
    result = run_pytest(tmp_path, NEEDS_A_KNOWN_MISSING_COMPONENT, required="1")
    assert result.returncode == 1, result.stdout
    assert "1 failed, 1 passed" in result.stdout
    assert "component 'postgresql' is missing; install it with: apt-get install -y postgresql" in (
        result.stdout
    )


def test_an_unknown_component_without_a_check_is_a_programming_error() -> None:
    with pytest.raises(ValueError) as error:
        require_component("teleporter")
    assert str(error.value) == (
        "require_component: unknown component 'teleporter'; known: chromium, dask, postgresql, "
        "or pass available= and how_to_install="
    )


def test_an_available_component_lets_the_test_run() -> None:
    require_component("anything", available=True, how_to_install="nothing to do")
    assert sorted(KNOWN_COMPONENTS) == ["chromium", "dask", "postgresql"]
