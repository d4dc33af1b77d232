"""What an open dashboard costs: W1 with a live-view client connected vs without.

W1 (one-routine jobs, pool 4) runs on one Runtime over a SQLite store; the dashboard
(routilux-web, uvicorn in a thread of this process, 127.0.0.1) serves that store, and a
client follows ``/api/events`` as the live view does. Both measurements alternate on the
same runtime; the floor is W1 without a client. Target: >= 0.8x.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

from bench._harness import best_of, row, selected, timed
from bench.bench_kernel import check, check_jobs, run_jobs, single_flow
from routilux_kernel import Runtime

W1_WEB = "one-routine jobs with the dashboard live view open"
WORKLOADS = [W1_WEB]
POOL = 4


class LiveViewClient:
    """A thread following the dashboard's event stream, counting the events it gets."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.events = 0
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True)

    def __enter__(self) -> LiveViewClient:
        self._thread.start()
        check(self.connected.wait(10), W1_WEB, "the live-view client did not connect")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _follow(self) -> None:
        import httpx

        with httpx.Client(timeout=30) as client, client.stream("GET", self.url) as response:
            for line in response.iter_lines():
                if line.startswith("event: jobs"):
                    self.events += 1
                    self.connected.set()
                if self._stop.is_set():
                    return


def _serve(store: Any) -> tuple[Any, threading.Thread, str]:
    import uvicorn
    from routilux_web import DashboardSettings, create_app
    from routilux_web.job_control import JobControl

    settings = DashboardSettings(store=store, control=JobControl(store))
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return (server, settings), thread, f"http://127.0.0.1:{port}/api/events"


def run(quick: bool) -> list[dict[str, Any]]:
    if not selected(W1_WEB):
        return []
    jobs = 300 if quick else 2000
    flow = single_flow("bench-web-w1")
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'runs.db'}"
        with Runtime(thread_pool_size=POOL, executor="thread", store=url) as runtime:
            run_jobs(runtime, flow, POOL * 2, W1_WEB, {"hop": 0})
            runtime.store.flush()
            (server, settings), thread, events_url = _serve(runtime.store)

            def measured() -> float:
                def once() -> Any:
                    states = run_jobs(runtime, flow, jobs, W1_WEB, {"hop": 0})
                    runtime.store.flush()
                    return states

                seconds, states = timed(once)
                check_jobs(states, W1_WEB, lambda s: s.shared_data.get("done") is True)
                return seconds

            def with_live_view() -> float:
                with LiveViewClient(events_url):
                    return measured()

            try:
                without, with_view, _ = best_of(measured, with_live_view, quick)
            finally:
                settings.stopping.set()
                server.should_exit = True
                thread.join(10)
    return [
        row(
            W1_WEB,
            "jobs/s",
            jobs / with_view,
            jobs / without,
            ">= 0.8x",
            f"{jobs} jobs, pool {POOL}, sqlite store; floor: the same runtime, no client",
        )
    ]
