"""Components the suite needs from the machine, and how a test asks for one.

A test that needs a component calls :func:`require_component`. On a developer's machine a
missing component skips the test; in CI (``ROUTILUX_REQUIRE_COMPONENTS=1``, set by
``.ci/run``, which installs every component first) it fails, so that a test can never pass
CI by being skipped.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

#: Set to 1 to turn a missing component into a failure instead of a skip.
REQUIRE_COMPONENTS_VARIABLE = "ROUTILUX_REQUIRE_COMPONENTS"

CHROMIUM_PATH = Path("/usr/bin/chromium")


def postgresql_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<major>/bin`` that has ``initdb`` and ``pg_ctl``."""
    candidates = []
    for initdb in glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        bin_dir = Path(initdb).parent
        major = bin_dir.parent.name
        if (bin_dir / "pg_ctl").exists() and major.isdigit():
            candidates.append((int(major), bin_dir))
    return max(candidates)[1] if candidates else None


def dask_cli_available() -> bool:
    """``distributed`` is importable, so ``python -m dask scheduler|worker`` works."""
    return (
        importlib.util.find_spec("dask") is not None
        and importlib.util.find_spec("distributed") is not None
    )


@dataclass(frozen=True)
class Component:
    """Something from outside the Python environment that some tests need."""

    name: str
    is_available: Callable[[], bool]
    how_to_install: str


KNOWN_COMPONENTS: dict[str, Component] = {
    component.name: component
    for component in (
        Component(
            "postgresql",
            lambda: postgresql_bin_dir() is not None,
            "apt-get install -y postgresql (Debian's server package: initdb and pg_ctl "
            "under /usr/lib/postgresql/<major>/bin)",
        ),
        Component(
            "chromium",
            lambda: os.access(CHROMIUM_PATH, os.X_OK),
            "apt-get install -y chromium chromium-driver (provides /usr/bin/chromium)",
        ),
        Component(
            "dask",
            dask_cli_available,
            f"{sys.executable} -m pip install -e plugins/routilux-dask "
            "(brings dask[distributed] and its `dask` command)",
        ),
    )
}


def components_required() -> bool:
    """True when a missing component must fail the test rather than skip it."""
    return os.environ.get(REQUIRE_COMPONENTS_VARIABLE, "").strip() not in ("", "0")


def require_component(
    name: str, available: bool | None = None, how_to_install: str | None = None
) -> None:
    """Skip the calling test (or module) when component ``name`` is missing; fail in CI.

    For the components in :data:`KNOWN_COMPONENTS` give the name only; for any other, say
    whether it is ``available`` and ``how_to_install`` it. Callable at module level too.
    """
    known = KNOWN_COMPONENTS.get(name)
    if available is None:
        if known is None:
            raise ValueError(
                f"require_component: unknown component {name!r}; known: "
                f"{', '.join(sorted(KNOWN_COMPONENTS))}, or pass available= and how_to_install="
            )
        available = known.is_available()
    if available:
        return
    if how_to_install is None:
        how_to_install = known.how_to_install if known is not None else "(no instructions given)"
    message = f"component {name!r} is missing; install it with: {how_to_install}"
    if components_required():
        pytest.fail(
            f"{message} ({REQUIRE_COMPONENTS_VARIABLE}=1: required components never skip)",
            pytrace=False,
        )
    pytest.skip(message, allow_module_level=True)
