"""What lifecycle hooks cost: W2 with no plugin next to W2 with a no-op plugin on every hook.

W2 is bench_kernel's chain of 20 routines, 200 jobs, ``Runtime(thread_pool_size=4)``,
counted in routed events per second. Both runtimes share one plugin manager with only the
built-in plugins (installed ones could implement hooks themselves); the second adds
:class:`NoOpHooks` through ``Runtime(plugins=[...])``.
"""

from __future__ import annotations

from typing import Any

from bench._harness import best_of, row, selected, timed
from bench.bench_kernel import chain_flow, check_jobs, run_jobs
from routilux_kernel import Flow, Runtime, hookimpl
from routilux_kernel.hooks.manager import create_plugin_manager

NONE = "W2 hooks: no plugin implements a lifecycle hook"
NO_OP = "W2 hooks: one no-op plugin on every lifecycle hook"
WORKLOADS = [NONE, NO_OP]

LENGTH = 20
POOL = 4


class NoOpHooks:
    """Implements every per-job and per-activation hook and does nothing in any of them."""

    @hookimpl
    def job_started(self, job_state: Any, flow: Any) -> None:
        pass

    @hookimpl
    def job_finished(self, job_state: Any, flow: Any) -> None:
        pass

    @hookimpl
    def routine_started(self, job_state: Any, routine_id: str) -> None:
        pass

    @hookimpl
    def routine_finished(self, job_state: Any, routine_id: str, error: Any) -> None:
        pass

    @hookimpl
    def event_emitted(self, job_state: Any, routine_id: str, event: str, data: Any) -> None:
        pass

    @hookimpl(wrapper=True)
    def run_activation(self, activation: Any) -> Any:
        return (yield)


def seconds_for(flow: Flow, jobs: int, plugins: list[Any], base: Any, batches: int) -> float:
    """Best seconds for ``jobs`` W2 jobs on a warm runtime, every job's result checked.

    One batch lasts only some 20 ms, so each sample keeps the best of a few batches.
    """
    best = float("inf")
    with Runtime(thread_pool_size=POOL, plugin_manager=base, plugins=plugins) as runtime:
        run_jobs(runtime, flow, POOL * 2, NO_OP, {"hop": 0})  # warm: plan built, threads up
        for _ in range(batches):
            seconds, states = timed(lambda: run_jobs(runtime, flow, jobs, NO_OP, {"hop": 0}))
            check_jobs(states, NO_OP, lambda s: s.shared_data.get("hops") == LENGTH - 1)
            best = min(best, seconds)
    return best


def run(quick: bool) -> list[dict[str, Any]]:
    if not (selected(NONE) or selected(NO_OP)):
        return []
    jobs, batches = (50, 2) if quick else (200, 5)
    routed = jobs * (LENGTH - 1)
    flow = chain_flow(LENGTH)
    base = create_plugin_manager(load_entry_points=False)
    without, with_plugin, _ = best_of(
        lambda: seconds_for(flow, jobs, [], base, batches),
        lambda: seconds_for(flow, jobs, [NoOpHooks()], base, batches),
        quick,
    )
    per_event_us = (with_plugin - without) / routed * 1e6
    size = f"{jobs} jobs x {LENGTH} routines, pool {POOL}"
    return [
        row(NONE, "events/s", routed / without, None, "", f"{size}; the floor of the next row"),
        row(
            NO_OP,
            "events/s",
            routed / with_plugin,
            routed / without,
            ">= 0.6x",
            f"{size}; {per_event_us:+.1f} us per routed event (5 hooks + 1 wrapper)",
        ),
    ]


if __name__ == "__main__":
    from bench._harness import format_table

    print(format_table(run(quick=False)))
