"""Fixtures of the dashboard tests: a store filled by real runs, ``routilux serve`` on it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from web_server import FLOWS, Served, start_server, stop_server

from routilux_kernel.cli import main


@pytest.fixture(scope="session")
def filled_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite store with 3 completed ``greeting`` jobs and 1 failed ``exploding`` job."""
    folder = tmp_path_factory.mktemp("store")
    url = f"sqlite:///{folder / 'runs.db'}"
    assert main(["run", str(FLOWS / "greeting.yaml"), "--jobs", "3", "--store", url]) == 0
    assert main(["run", str(FLOWS / "exploding.yaml"), "--store", url]) == 1
    return url


@pytest.fixture(scope="module")
def server(filled_store: str) -> Iterator[Served]:
    served = start_server(filled_store)
    try:
        yield served
    finally:
        stop_server(served)


@pytest.fixture()
def wait_until() -> Callable[..., Any]:
    """Polls ``condition`` until it returns something true (bounded by ``timeout``)."""

    def wait(condition: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(0.05)

    return wait
