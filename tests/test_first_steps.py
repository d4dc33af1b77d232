"""What a new user meets first: the version, the error types, a wrong executor name, and a
Runtime that is dropped without shutdown (issue 9, item 7)."""

from __future__ import annotations

import gc
import subprocess
import sys
import threading
import warnings
import weakref

import pytest

import routilux_kernel
from routilux_kernel import Flow, Routine, Runtime
from routilux_kernel.core.errors import ExecutorError

#: Upper bound for a thread to end after its runtime is collected.
WAIT = 10.0


def test_routilux_version_prints_the_installed_version() -> None:
    from importlib.metadata import version

    done = subprocess.run(
        [sys.executable, "-m", "routilux_kernel.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        f"routilux {version('routilux-kernel')}\n",
        "",
    )


@pytest.mark.parametrize(
    "name", ["JobCancelledError", "ExecutorError", "ActivationPolicyError", "WorkerCrashedError"]
)
def test_the_error_types_the_quickstart_prints_are_importable(name: str) -> None:
    error_type = getattr(routilux_kernel, name)
    assert issubclass(error_type, Exception)
    assert name in routilux_kernel.__all__


def test_an_unknown_executor_name_fails_at_construction() -> None:
    with pytest.raises(ExecutorError) as caught:
        Runtime(executor="no-such")
    assert str(caught.value).startswith(
        "Runtime(executor='no-such'): no executor of that name is installed; installed executors: "
    )
    assert "process" in str(caught.value) and "thread" in str(caught.value)


class _Noop(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.add_slot("trigger")

    def logic(self, slot_data, policy_message, job_state):  # type: ignore[no-untyped-def]
        job_state.shared_data["ran"] = True


def test_a_runtime_dropped_without_shutdown_releases_its_threads_and_warns() -> None:
    flow = Flow("dropped")
    flow.add_routine(_Noop(), "noop")
    before = set(threading.enumerate())
    refs = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(20):
            runtime = Runtime(thread_pool_size=2)
            assert runtime.run(flow).shared_data == {"ran": True}
            refs.append(weakref.ref(runtime))
            del runtime
        started = [t for t in threading.enumerate() if t not in before]
        assert started  # each runtime had a worker thread
        gc.collect()
    assert [ref() for ref in refs] == [None] * 20  # nothing keeps a finished runtime alive
    resource_warnings = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert len(resource_warnings) == 20
    assert "without shutdown()" in str(resource_warnings[0].message)
    for thread in started:
        thread.join(WAIT)
    assert [t.name for t in started if t.is_alive()] == []


def test_a_runtime_shut_down_properly_does_not_warn() -> None:
    flow = Flow("closed")
    flow.add_routine(_Noop(), "noop")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Runtime() as runtime:
            runtime.run(flow)
        del runtime
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
