"""Starting ``routilux serve`` for the dashboard tests, on a free port of 127.0.0.1."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

FLOWS = Path(__file__).parent / "flows"
SERVE_STARTUP = 30.0


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
