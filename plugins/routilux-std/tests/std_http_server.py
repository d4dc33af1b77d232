"""A local HTTP server on 127.0.0.1 whose answers the tests script."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ScriptedServer:
    """Answers GET /items/<n> with JSON; ``failures[path]`` 503s to give before succeeding."""

    def __init__(self) -> None:
        self.failures: dict[str, int] = {}
        self.delays: dict[str, threading.Event] = {}
        self.requests: list[str] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                with server.lock:
                    server.requests.append(self.path)
                    failing = server.failures.get(self.path, 0)
                    if failing:
                        server.failures[self.path] = failing - 1
                gate = server.delays.get(self.path)
                if gate is not None:
                    gate.wait(10)  # held until the test releases it (a timeout scenario)
                if failing:
                    self._answer(503, {"error": "try again"})
                elif self.path.startswith("/items/"):
                    self._answer(200, {"item": int(self.path.rsplit("/", 1)[1])})
                else:
                    self._answer(404, {"error": "no such thing"})

            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
