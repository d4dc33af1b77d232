"""What the SQLite job store costs: W1 and W2 on ``sqlite:///`` next to the memory store.

W1: 2,000 one-routine jobs, pool 4, jobs/s. W2: a chain of 20 routines, 200 jobs, pool 4,
routed events/s. Both runtimes run in this process, alternately; the SQLite time counts
until every job finished *and* the store committed all of it (``store.flush()``), so the
grouped writes are measured, not left behind.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._harness import best_of, row, selected, timed
from bench.bench_kernel import chain_flow, check_jobs, run_jobs, single_flow
from routilux_kernel import Flow, Runtime
from routilux_kernel.core.job_state import JobState

W1_STORE = "job store: one-routine jobs, sqlite vs memory"
W2_STORE = "job store: chain of 20 routines, sqlite vs memory"
WORKLOADS = [W1_STORE, W2_STORE]
POOL = 4
LENGTH = 20


def seconds_for(
    flow: Flow, jobs: int, store: str, workload: str, expect: Callable[[JobState], bool]
) -> float:
    with Runtime(thread_pool_size=POOL, executor="thread", store=store) as runtime:
        run_jobs(runtime, flow, POOL * 2, workload, {"hop": 0})
        runtime.store.flush()

        def measured() -> list[JobState]:
            states = run_jobs(runtime, flow, jobs, workload, {"hop": 0})
            runtime.store.flush()
            return states

        seconds, states = timed(measured)
    check_jobs(states, workload, expect)
    return seconds


def _compare(
    workload: str, flow: Flow, jobs: int, expect: Callable[[JobState], bool], quick: bool
) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as folder:
        counter = iter(range(1_000_000))

        def sqlite() -> float:  # a fresh file per sample: no sample pays for an earlier one
            url = f"sqlite:///{Path(folder) / f'runs{next(counter)}.db'}"
            return seconds_for(flow, jobs, url, workload, expect)

        memory, durable, _ = best_of(
            lambda: seconds_for(flow, jobs, "memory", workload, expect), sqlite, quick
        )
    return memory, durable


def run(quick: bool) -> list[dict[str, Any]]:
    rows = []
    if selected(W1_STORE):
        jobs = 300 if quick else 2000
        memory, durable = _compare(
            W1_STORE,
            single_flow("bench-store-w1"),
            jobs,
            lambda s: s.shared_data.get("done") is True,
            quick,
        )
        rows.append(
            row(
                W1_STORE,
                "jobs/s",
                jobs / durable,
                jobs / memory,
                ">= 0.5x",
                f"{jobs} jobs, pool {POOL}; floor: the same on the memory store",
            )
        )
    if selected(W2_STORE):
        jobs = 50 if quick else 200
        routed = jobs * (LENGTH - 1)
        memory, durable = _compare(
            W2_STORE,
            chain_flow(LENGTH),
            jobs,
            lambda s: s.shared_data.get("hops") == LENGTH - 1,
            quick,
        )
        rows.append(
            row(
                W2_STORE,
                "events/s",
                routed / durable,
                routed / memory,
                ">= 0.5x",
                f"{jobs} jobs x {LENGTH} routines, pool {POOL}; floor: the memory store",
            )
        )
    return rows


if __name__ == "__main__":
    from bench._harness import format_table

    print(format_table(run(quick=False)))
