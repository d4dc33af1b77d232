"""W7: I/O-bound jobs with ``async def`` logic, next to raw ``asyncio.gather`` of the same work.

Each job's one routine awaits ``asyncio.sleep`` (standing in for an HTTP call, an LLM
request, a database query) and writes one key. On threads these jobs would be capped by the
pool; async logic runs on the runtime's event loop, so all of them wait at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench._harness import best_of, row, selected, timed
from routilux_kernel import Flow, JobState, Routine, Runtime

W7 = "W7 jobs awaiting 50 ms of I/O"
WORKLOADS = [W7]

IO_SECONDS = 0.05
WAIT_SECONDS = 120.0


class BenchCheckError(AssertionError):
    """A benchmark run produced a wrong result, so its figure would be meaningless."""


def io_flow() -> Flow:
    routine = Routine()
    routine.add_slot("trigger")

    async def fetch(slot_data: dict[str, Any], message: Any, job_state: JobState) -> None:
        await asyncio.sleep(IO_SECONDS)
        job_state.shared_data["answer"] = slot_data["trigger"][0]["n"] * 2

    routine.set_logic(fetch)
    flow = Flow("w7_async_io")
    flow.add_routine(routine, "fetch")
    return flow


def run_ours(runtime: Runtime, flow: Flow, jobs: int) -> float:
    seconds, states = timed(lambda: _exec_all(runtime, flow, jobs))
    wrong = [
        (n, s)
        for n, s in enumerate(states)
        if s.status != "completed" or s.shared_data != {"answer": n * 2}
    ]
    if wrong:
        n, state = wrong[0]
        raise BenchCheckError(
            f"{W7}: {len(wrong)} of {jobs} jobs wrong; first: job {n} {state.status} "
            f"error={state.error!r} shared_data={state.shared_data}"
        )
    return seconds


def _exec_all(runtime: Runtime, flow: Flow, jobs: int) -> list[JobState]:
    states = [runtime.exec(flow, {"n": n}) for n in range(jobs)]
    if not runtime.wait_until_all_jobs_finished(WAIT_SECONDS):
        raise BenchCheckError(f"{W7}: jobs still running after {WAIT_SECONDS}s")
    return states


def run_floor(jobs: int) -> float:
    async def fetch(n: int) -> int:
        await asyncio.sleep(IO_SECONDS)
        return n * 2

    async def gather_all() -> list[int]:
        return list(await asyncio.gather(*(fetch(n) for n in range(jobs))))

    seconds, answers = timed(lambda: asyncio.run(gather_all()))
    if answers != [n * 2 for n in range(jobs)]:
        raise BenchCheckError(f"{W7}: the asyncio.gather floor computed wrong answers")
    return seconds


def run(quick: bool) -> list[dict[str, Any]]:
    if not selected(W7):
        return []
    jobs = 200 if quick else 2000
    flow = io_flow()
    # thread_pool_size=4 as in W1: async logic does not use the pool, so it caps nothing.
    with Runtime(thread_pool_size=4, executor="thread") as runtime:
        run_ours(runtime, flow, 10)  # warm: plan built, loop thread started
        floor, ours, samples = best_of(
            lambda: run_floor(jobs), lambda: run_ours(runtime, flow, jobs), quick
        )
    result = row(
        W7,
        "s",
        ours,
        floor,
        "<= 0.6",
        f"{jobs} jobs x {IO_SECONDS * 1000:.0f} ms await, pool 4; floor: asyncio.gather",
    )
    result["samples_s"] = samples
    return [result]
