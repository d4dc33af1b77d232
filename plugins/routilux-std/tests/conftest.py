"""Shared fixtures: a local HTTP server on 127.0.0.1 whose answers the tests script."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from std_http_server import ScriptedServer


@pytest.fixture
def http_server() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        for gate in server.delays.values():
            gate.set()
        server.httpd.shutdown()
        server.httpd.server_close()
