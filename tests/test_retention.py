"""Finished jobs stay queryable up to a bound; older ones are forgotten and freed."""

from __future__ import annotations

import gc
import weakref

import pytest

from routilux_kernel import Flow
from routilux_kernel.engine.runtime import DEFAULT_MAX_RETAINED_JOBS

WAIT = 10.0


@pytest.fixture
def noop_flow(make_routine) -> Flow:
    flow = Flow("noop")
    flow.add_routine(make_routine(logic=lambda d, m, s: s.shared_log.append(d)), "noop")
    return flow


def test_default_retention_is_bounded(runtime) -> None:
    assert runtime.max_retained_jobs == DEFAULT_MAX_RETAINED_JOBS > 0


def test_only_the_newest_finished_jobs_are_kept(make_runtime, noop_flow) -> None:
    runtime = make_runtime(thread_pool_size=4, max_retained_jobs=3)
    states = [runtime.run(noop_flow, {"n": n}, timeout=WAIT) for n in range(9)]
    assert all(s.status == "completed" for s in states)
    assert runtime.list_jobs() == states[-3:]
    for old in states[:-3]:
        assert runtime.get_job(old.job_id) is None
    for kept in states[-3:]:
        assert runtime.get_job(kept.job_id) is kept


def test_retention_holds_for_concurrent_jobs(make_runtime, noop_flow) -> None:
    runtime = make_runtime(thread_pool_size=4, max_retained_jobs=5)
    states = [runtime.exec(noop_flow, {"n": n}) for n in range(15)]
    assert runtime.wait_until_all_jobs_finished(timeout=WAIT)
    assert len(runtime.list_jobs()) == 5
    assert len(runtime.list_jobs(status="completed")) == 5
    assert sum(runtime.get_job(s.job_id) is not None for s in states) == 5
    # the caller's own references stay valid whatever the runtime forgot
    assert [s.shared_log for s in states] == [[{"trigger": [{"n": n}]}] for n in range(15)]


def test_zero_retention_keeps_nothing(make_runtime, noop_flow) -> None:
    runtime = make_runtime(max_retained_jobs=0)
    state = runtime.run(noop_flow, timeout=WAIT)
    assert state.status == "completed"
    assert runtime.get_job(state.job_id) is None
    assert runtime.list_jobs() == []


def test_negative_retention_is_refused() -> None:
    from routilux_kernel import Runtime

    with pytest.raises(ValueError, match="max_retained_jobs must be an int >= 0"):
        Runtime(max_retained_jobs=-1)


@pytest.mark.parametrize("timeout", [None, 60.0], ids=["no_timeout", "with_timeout"])
def test_forgotten_jobs_are_freed(make_runtime, noop_flow, timeout) -> None:
    """Memory does not grow with the number of jobs run, timeouts or not."""
    runtime = make_runtime(thread_pool_size=2, max_retained_jobs=2)
    refs = []
    for n in range(30):
        state = runtime.run(noop_flow, {"n": n}, timeout=timeout)
        assert state.status == "completed"
        refs.append(weakref.ref(state))
    del state
    gc.collect()
    alive = [n for n, ref in enumerate(refs) if ref() is not None]
    assert alive == [28, 29]


def test_flows_no_longer_used_are_freed(make_runtime, make_routine) -> None:
    """A script that builds a flow per job must not keep every flow it ever ran."""
    runtime = make_runtime(thread_pool_size=2, max_retained_jobs=2)
    refs = []
    for n in range(20):
        flow = Flow(f"one_off_{n}")
        flow.add_routine(make_routine(logic=lambda *a: None), "only")
        assert runtime.run(flow, timeout=WAIT).status == "completed"
        refs.append(weakref.ref(flow))
    del flow
    gc.collect()
    assert [n for n, ref in enumerate(refs) if ref() is not None] == []
