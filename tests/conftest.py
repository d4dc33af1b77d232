"""Shared fixtures: an isolated flow registry, runtimes that always shut down, routine builders."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from routilux_kernel import Flow, FlowRegistry, Routine, Runtime
from routilux_kernel.core.job_store import JobStore
from testsupport.job_stores import DURABLE_STORES, fresh_postgres_url, open_job_store

#: Upper bound for any wait in a test; a job that needs longer is a hang, not slowness.
WAIT = 10.0


@pytest.fixture(autouse=True)
def flow_registry(monkeypatch: pytest.MonkeyPatch) -> FlowRegistry:
    """A fresh process-wide FlowRegistry, so names registered in one test never leak."""
    registry = FlowRegistry()
    monkeypatch.setattr(FlowRegistry, "_instance", registry)
    return registry


@pytest.fixture(autouse=True)
def thread_executor_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kernel semantics are tested on the built-in thread executor, whatever the shell says."""
    monkeypatch.delenv("ROUTILUX_EXECUTOR", raising=False)


@pytest.fixture(autouse=True)
def memory_store_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """``routilux run`` keeps jobs in .routilux/runs.db by default; tests never write the repo."""
    monkeypatch.setenv("ROUTILUX_STORE", "memory")


@pytest.fixture(params=DURABLE_STORES)
def store_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """A fresh durable store: a SQLite file, or a schema of the private PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/runs.db"
    return fresh_postgres_url(request.getfixturevalue("postgres_server").url)


@pytest.fixture
def job_store() -> Iterator[Callable[[str], JobStore]]:
    """``job_store(url)``: the store a URL names, as ``routilux jobs`` opens it; closed after."""
    opened: list[JobStore] = []

    def open_url(url: str) -> JobStore:
        opened.append(open_job_store(url))
        return opened[-1]

    yield open_url
    for store in opened:
        store.close()


class Gates:
    """Events that hold routine logic; all are opened before the runtime shuts down."""

    def __init__(self) -> None:
        self._events: list[threading.Event] = []

    def new(self) -> threading.Event:
        event = threading.Event()
        self._events.append(event)
        return event

    def open_all(self) -> None:
        for event in self._events:
            event.set()


@pytest.fixture
def gates() -> Gates:
    return Gates()


@pytest.fixture
def make_runtime(gates: Gates) -> Iterator[Callable[..., Runtime]]:
    """Build runtimes; each is shut down (after every gate is opened) when the test ends."""
    created: list[Runtime] = []

    def build(*args: Any, **kwargs: Any) -> Runtime:
        runtime = Runtime(*args, **kwargs)
        created.append(runtime)
        return runtime

    yield build
    gates.open_all()
    for runtime in created:
        runtime.shutdown(wait=True, timeout=WAIT)


@pytest.fixture
def runtime(make_runtime: Callable[..., Runtime]) -> Runtime:
    """A runtime with a pool of 8 threads."""
    return make_runtime(thread_pool_size=8)


def build_routine(
    slots: Iterable[str] = ("trigger",),
    events: Iterable[str] = ("out",),
    logic: Callable[..., Any] | None = None,
    *,
    policy: Any = None,
    **slot_options: Any,
) -> Routine:
    """A plain Routine with the given slots and events; give it logic now or later."""
    routine = Routine()
    for slot in slots:
        routine.add_slot(slot, **slot_options)
    for event in events:
        routine.add_event(event)
    if logic is not None:
        routine.set_logic(logic)
    if policy is not None:
        routine.set_activation_policy(policy)
    return routine


@pytest.fixture
def make_routine() -> Callable[..., Routine]:
    """``make_routine(slots, events, logic=None, policy=None, **slot_options)``."""
    return build_routine


def build_chain(length: int = 2, flow_id: str = "chain") -> Flow:
    """``r0 -> r1 -> ...``; every routine appends ``(its id, the items it got)`` to shared_log."""
    flow = Flow(flow_id)
    routines: list[Routine] = []
    for i in range(length):
        routine = build_routine(["trigger"] if i == 0 else ["input"], ["out"])
        routines.append(routine)

        def logic(slot_data: Any, message: Any, job_state: Any, _i: int = i) -> None:
            items = next(iter(slot_data.values()))
            job_state.shared_log.append((f"r{_i}", items))
            routines[_i].emit("out", **items[0])

        routine.set_logic(logic)
        flow.add_routine(routine, f"r{i}")
        if i:
            flow.connect(f"r{i - 1}", "out", f"r{i}", "input")
    return flow


@pytest.fixture
def make_chain() -> Callable[..., Flow]:
    """``make_chain(length=2, flow_id="chain")``: a linear flow that logs what each step got."""
    return build_chain
