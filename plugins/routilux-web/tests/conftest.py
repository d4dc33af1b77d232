"""Fixtures of the dashboard tests: a store filled by real runs, ``routilux serve`` on it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from routilux_kernel.cli import main

FLOWS = Path(__file__).parent / "flows"
SERVE_STARTUP = 30.0


@pytest.fixture(scope="session")
def filled_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite store with 3 completed ``greeting`` jobs and 1 failed ``exploding`` job."""
    folder = tmp_path_factory.mktemp("store")
    url = f"sqlite:///{folder / 'runs.db'}"
    assert main(["run", str(FLOWS / "greeting.yaml"), "--jobs", "3", "--store", url]) == 0
    assert main(["run", str(FLOWS / "exploding.yaml"), "--store", url]) == 1
    return url


@dataclass
class Served:
    url: str
    process: subprocess.Popen[str]

    def client(self, **options: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10.0, **options)


def start_server(store: str, *extra: str, env: dict[str, str] | None = None) -> Served:
    """``routilux serve`` on a free port of 127.0.0.1; returns once it listens."""
    environment = {**os.environ, "ROUTILUX_WEB_LIVE_INTERVAL": "0.1", **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(FLOWS), *filter(None, [environment.get("PYTHONPATH")])]
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "routilux_kernel.cli",
            "serve",
            "--store",
            store,
            "--port",
            "0",
            *extra,
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    assert process.stderr is not None
    deadline = time.monotonic() + SERVE_STARTUP
    seen = []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        seen.append(line)
        match = re.search(r"serving on (http://127\.0\.0\.1:\d+)/", line)
        if match:
            return Served(match.group(1), process)
    process.kill()
    raise AssertionError("routilux serve did not start:\n" + "".join(seen))


def stop_server(served: Served) -> None:
    served.process.terminate()
    try:
        served.process.wait(10)
    except subprocess.TimeoutExpired:
        served.process.kill()
        raise


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
