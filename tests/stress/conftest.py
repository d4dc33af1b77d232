"""Shared by the stress tests: each runs as it comes and again with the interpreter switching
threads every 10 µs, where races that hide at the default interval show up."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest


@pytest.fixture(params=[None, 1e-5], ids=["default_switching", "switch_every_10us"])
def switch_interval(request: pytest.FixtureRequest) -> Iterator[float | None]:
    previous = sys.getswitchinterval()
    if request.param is not None:
        sys.setswitchinterval(request.param)
    try:
        yield request.param
    finally:
        sys.setswitchinterval(previous)
