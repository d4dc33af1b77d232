"""Kernel workloads W1-W6, each measured next to the same work on raw concurrent.futures.

Every measurement checks its own result (job statuses, exact counts); a wrong result raises
:class:`BenchCheckError` instead of reporting a figure for work that was not done.
"""

from __future__ import annotations

import gc
import threading
import time
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from bench._harness import best_of, repeats, row, selected, timed
from routilux_kernel import Flow, JobState, Routine, Runtime, create_plugin_manager
from routilux_kernel.activation_policies import immediate

#: The kernel alone: installed plugins (an OpenTelemetry observer, say) are measured by their
#: own bench modules, not folded into the kernel's figures.
KERNEL_ONLY = create_plugin_manager(load_entry_points=False)

W1 = "W1 one-routine jobs"
W2 = "W2 chain of 20 routines"
W3 = "W3 50 items fanned into a collector"
W4 = "W4 jobs sleeping 10 ms, pool 20"
W5_MEAN = "W5 latency of one trivial job, mean"
W5_P99 = "W5 latency of one trivial job, p99"
W6_PER_JOB = "W6 memory per retained job"
W6_GROWTH = "W6 memory growth once retention is full"

WORKLOADS = [W1, W2, W3, W4, W5_MEAN, W5_P99, W6_PER_JOB, W6_GROWTH]

#: Bound on any single wait, so a hung kernel fails the bench instead of hanging it.
WAIT_SECONDS = 120.0


@dataclass(frozen=True)
class Sizes:
    w1_jobs: int = 2000
    w2_jobs: int = 200
    w2_length: int = 20
    w3_jobs: int = 100
    w3_items: int = 50
    w4_jobs: int = 200
    w4_sleep: float = 0.010
    w4_pool: int = 20
    w5_jobs: int = 500
    w6_checkpoints: tuple[int, int, int] = (1000, 5000, 10000)
    w6_retained: int = 1000


FULL = Sizes()
QUICK = Sizes(
    w1_jobs=200,
    w2_jobs=20,
    w3_jobs=10,
    w4_jobs=40,
    w5_jobs=50,
    w6_checkpoints=(100, 500, 1000),
    w6_retained=100,
)


class BenchCheckError(AssertionError):
    """A benchmark run produced a wrong result, so its figure would be meaningless."""


def check(condition: bool, workload: str, what: str) -> None:
    if not condition:
        raise BenchCheckError(f"{workload}: {what}")


def check_jobs(states: list[JobState], workload: str, expect: Callable[[JobState], bool]) -> None:
    """Every job completed, left no data behind, and ``expect`` holds for its state."""
    bad = [s for s in states if s.status != "completed" or s.unconsumed or not expect(s)]
    if bad:
        first = bad[0]
        raise BenchCheckError(
            f"{workload}: {len(bad)} of {len(states)} jobs wrong; first: {first!r} "
            f"error={first.error!r} shared_data={first.shared_data} unconsumed={first.unconsumed}"
        )


def warm_pool(pool: ThreadPoolExecutor, n: int) -> None:
    """Let the pool start all its threads before the clock starts, as the runtime's do."""
    wait([pool.submit(time.sleep, 0.001) for _ in range(n)])


def with_samples(result: dict[str, Any], samples: dict[str, list[float]]) -> dict[str, Any]:
    """Keep every repeat's seconds in the JSON, so noise can be judged."""
    result["samples_s"] = {key: [round(v, 9) for v in values] for key, values in samples.items()}
    return result


# -- flows -------------------------------------------------------------------------------


class Trivial(Routine):
    """One routine on the trigger slot; its logic (after an optional sleep) marks the job."""

    def __init__(self, sleep: float = 0.0) -> None:
        super().__init__()
        self.add_slot("trigger")
        self.sleep = sleep

    def logic(self, slot_data: dict[str, Any], policy_message: Any, job_state: JobState) -> None:
        if self.sleep:
            time.sleep(self.sleep)
        job_state.shared_data["done"] = True


class Forward(Routine):
    """A link of the W2 chain: forward every item with its hop count plus one."""

    def __init__(self, slot: str, last: bool) -> None:
        super().__init__()
        self.slot = slot
        self.last = last
        self.add_slot(slot)
        self.add_event("output", ["hop"])

    def logic(self, slot_data: dict[str, Any], policy_message: Any, job_state: JobState) -> None:
        for item in slot_data[self.slot]:
            if self.last:  # a lost or doubled landing anywhere shows up in these two
                shared = job_state.shared_data
                shared["hops"] = item["hop"]
                shared["arrived"] = shared.get("arrived", 0) + 1
            else:
                self.emit("output", hop=item["hop"] + 1)


class FanOut(Routine):
    """W3 entry: emit ``items`` numbered items."""

    def __init__(self, items: int) -> None:
        super().__init__()
        self.items = items
        self.add_slot("trigger")
        self.add_event("item", ["i"])

    def logic(self, slot_data: dict[str, Any], policy_message: Any, job_state: JobState) -> None:
        for i in range(self.items):
            self.emit("item", i=i)


class Collector(Routine):
    """W3 collector: count and sum what arrives (one activation at a time per job)."""

    def __init__(self) -> None:
        super().__init__()
        self.add_slot("input")
        self.set_activation_policy(immediate())

    def logic(self, slot_data: dict[str, Any], policy_message: Any, job_state: JobState) -> None:
        items = slot_data["input"]
        shared = job_state.shared_data
        shared["count"] = shared.get("count", 0) + len(items)
        shared["sum"] = shared.get("sum", 0) + sum(item["i"] for item in items)


def single_flow(flow_id: str, sleep: float = 0.0) -> Flow:
    flow = Flow(flow_id)
    flow.add_routine(Trivial(sleep), "only")
    return flow


def chain_flow(length: int) -> Flow:
    flow = Flow("bench-w2-chain")
    for index in range(length):
        slot = "trigger" if index == 0 else "input"
        flow.add_routine(Forward(slot, last=index == length - 1), f"link{index}")
        if index:
            flow.connect(f"link{index - 1}", "output", f"link{index}", "input")
    return flow


def fan_in_flow(items: int) -> Flow:
    flow = Flow("bench-w3-fan-in")
    flow.add_routine(FanOut(items), "source")
    flow.add_routine(Collector(), "collector")
    flow.connect("source", "item", "collector", "input")
    return flow


def run_jobs(
    runtime: Runtime, flow: Flow, jobs: int, workload: str, params: dict[str, Any] | None = None
) -> list[JobState]:
    """Exec ``jobs`` jobs at once and wait for all of them (the measured section)."""
    states = [runtime.exec(flow, params) for _ in range(jobs)]
    check(runtime.wait_until_all_jobs_finished(WAIT_SECONDS), workload, "jobs did not finish")
    return states


def runtime_seconds(
    flow: Flow,
    jobs: int,
    pool: int,
    workload: str,
    expect: Callable[[JobState], bool],
    params: dict[str, Any] | None = None,
) -> float:
    """Seconds from the first exec to wait_until_all_jobs_finished, on a warm runtime."""
    with Runtime(thread_pool_size=pool, executor="thread", plugin_manager=KERNEL_ONLY) as runtime:
        run_jobs(runtime, flow, pool * 2, workload, params)  # plan built, threads started
        seconds, states = timed(lambda: run_jobs(runtime, flow, jobs, workload, params))
    check_jobs(states, workload, expect)
    return seconds


class Countdown:
    """Floor-side completion: set ``done`` when ``count`` parts have called ``tick``."""

    def __init__(self, count: int) -> None:
        self.left = count
        self.lock = threading.Lock()
        self.done = threading.Event()

    def tick(self) -> None:
        with self.lock:
            self.left -= 1
            if not self.left:
                self.done.set()


# -- W1 ----------------------------------------------------------------------------------


def w1(sizes: Sizes, quick: bool) -> dict[str, Any]:
    jobs = sizes.w1_jobs
    flow = single_flow("bench-w1")

    def ours() -> float:
        return runtime_seconds(flow, jobs, 4, W1, lambda s: s.shared_data.get("done") is True)

    def floor() -> float:
        def trivial(shared: dict[str, Any]) -> None:
            shared["done"] = True

        results: list[dict[str, Any]] = [{} for _ in range(jobs)]
        with ThreadPoolExecutor(4) as pool:
            warm_pool(pool, 8)
            seconds, _ = timed(lambda: wait([pool.submit(trivial, r) for r in results]))
        check(all(r.get("done") for r in results), W1, "floor: a trivial function did not run")
        return seconds

    floor_s, ours_s, samples = best_of(floor, ours, quick)
    note = f"{jobs} jobs, pool 4"
    return with_samples(row(W1, "jobs/s", jobs / ours_s, jobs / floor_s, ">= 0.3x", note), samples)


# -- W2 ----------------------------------------------------------------------------------


def w2(sizes: Sizes, quick: bool) -> dict[str, Any]:
    jobs, length = sizes.w2_jobs, sizes.w2_length
    routed = jobs * (length - 1)  # every link but the entry receives exactly one event per job
    flow = chain_flow(length)

    def ours() -> float:
        def expect(state: JobState) -> bool:
            shared = state.shared_data  # one increment per landing, one arrival at the end
            return shared.get("hops") == length - 1 and shared.get("arrived") == 1

        return runtime_seconds(flow, jobs, 4, W2, expect, {"hop": 0})

    def floor() -> float:
        hops = [-1] * jobs
        finished = Countdown(jobs)
        with ThreadPoolExecutor(4) as pool:

            def step(chain: int, index: int, data: dict[str, int]) -> None:
                if index < length - 1:
                    pool.submit(step, chain, index + 1, {"hop": data["hop"] + 1})
                else:
                    hops[chain] = data["hop"]
                    finished.tick()

            def start() -> None:
                for chain in range(jobs):
                    pool.submit(step, chain, 0, {"hop": 0})
                check(finished.done.wait(WAIT_SECONDS), W2, "floor: chains did not finish")

            warm_pool(pool, 8)
            seconds, _ = timed(start)
        check(hops == [length - 1] * jobs, W2, f"floor: wrong hop counts {hops[:5]}")
        return seconds

    floor_s, ours_s, samples = best_of(floor, ours, quick)
    note = f"{jobs} jobs x {length - 1} routed events, pool 4"
    return with_samples(
        row(W2, "events/s", routed / ours_s, routed / floor_s, ">= 0.5x", note), samples
    )


# -- W3 ----------------------------------------------------------------------------------


def w3(sizes: Sizes, quick: bool) -> dict[str, Any]:
    jobs, items = sizes.w3_jobs, sizes.w3_items
    total = sum(range(items))
    flow = fan_in_flow(items)

    def ours() -> float:
        def expect(state: JobState) -> bool:
            shared = state.shared_data
            return shared.get("count") == items and shared.get("sum") == total

        return runtime_seconds(flow, jobs, 4, W3, expect)

    def floor() -> float:
        arrived: list[list[int]] = [[] for _ in range(jobs)]
        locks = [threading.Lock() for _ in range(jobs)]
        finished = Countdown(jobs)
        with ThreadPoolExecutor(4) as pool:

            def collect(job: int, i: int) -> None:
                with locks[job]:
                    arrived[job].append(i)
                    complete = len(arrived[job]) == items
                if complete:
                    finished.tick()

            def fan_out(job: int) -> None:
                for i in range(items):
                    pool.submit(collect, job, i)

            def start() -> None:
                for job in range(jobs):
                    pool.submit(fan_out, job)
                check(finished.done.wait(WAIT_SECONDS), W3, "floor: fan-in did not finish")

            warm_pool(pool, 8)
            seconds, _ = timed(start)
        check(all(sorted(a) == list(range(items)) for a in arrived), W3, "floor: items lost")
        return seconds

    floor_s, ours_s, samples = best_of(floor, ours, quick)
    note = f"{jobs} jobs x {items} items, pool 4"
    return with_samples(row(W3, "jobs/s", jobs / ours_s, jobs / floor_s, ">= 0.5x", note), samples)


# -- W4 ----------------------------------------------------------------------------------


def w4(sizes: Sizes, quick: bool) -> dict[str, Any]:
    jobs, sleep, pool_size = sizes.w4_jobs, sizes.w4_sleep, sizes.w4_pool
    ideal = jobs * sleep / pool_size
    flow = single_flow("bench-w4-sleep", sleep)

    def ours() -> float:
        def expect(state: JobState) -> bool:
            return state.shared_data.get("done") is True

        return runtime_seconds(flow, jobs, pool_size, W4, expect)

    def floor() -> float:
        with ThreadPoolExecutor(pool_size) as pool:
            warm_pool(pool, pool_size * 2)
            seconds, (finished, _) = timed(
                lambda: wait([pool.submit(time.sleep, sleep) for _ in range(jobs)])
            )
        check(len(finished) == jobs, W4, "floor: sleeps did not finish")
        return seconds

    floor_s, ours_s, samples = best_of(floor, ours, quick)
    note = (
        f"wall / ideal {ideal:.2f}s ({jobs} x {sleep * 1000:.0f} ms / pool {pool_size}); "
        "ratio = ours/floor"
    )
    return with_samples(
        row(W4, "x ideal", ours_s / ideal, floor_s / ideal, "<= 1.15", note), samples
    )


# -- W5 ----------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def w5(sizes: Sizes, quick: bool) -> list[dict[str, Any]]:
    jobs = sizes.w5_jobs
    flow = single_flow("bench-w5-latency")

    def ours() -> list[float]:
        samples = []
        with Runtime(thread_pool_size=4, executor="thread", plugin_manager=KERNEL_ONLY) as runtime:
            for _ in range(50):
                runtime.run(flow)
            gc.collect()
            for _ in range(jobs):
                start = time.perf_counter()
                state = runtime.run(flow)
                samples.append(time.perf_counter() - start)
                check(state.status == "completed", W5_MEAN, f"job {state!r} {state.error!r}")
        return samples

    def floor() -> list[float]:
        shared: dict[str, Any] = {}

        def trivial() -> None:
            shared["done"] = True

        samples = []
        with ThreadPoolExecutor(4) as pool:
            warm_pool(pool, 8)
            gc.collect()
            for _ in range(jobs):
                start = time.perf_counter()
                pool.submit(trivial).result()
                samples.append(time.perf_counter() - start)
        return samples

    runs: dict[str, list[list[float]]] = {"floor": [], "ours": []}
    for _ in range(repeats(quick)):
        runs["floor"].append(floor())
        runs["ours"].append(ours())

    def mean(samples: list[float]) -> float:
        return sum(samples) / len(samples)

    def p99(samples: list[float]) -> float:
        return percentile(samples, 0.99)

    rows = []
    for name, stat in ((W5_MEAN, mean), (W5_P99, p99)):
        per_run = {side: [stat(s) for s in samples] for side, samples in runs.items()}
        ours_us, floor_us = min(per_run["ours"]) * 1e6, min(per_run["floor"]) * 1e6
        note = (
            f"Runtime.run vs submit().result(), {jobs} in sequence; "
            f"the kernel adds {ours_us - floor_us:.0f} us"
        )
        rows.append(with_samples(row(name, "us/job", ours_us, floor_us, "< 1000", note), per_run))
    return rows


# -- W6 ----------------------------------------------------------------------------------


def w6(sizes: Sizes, quick: bool) -> list[dict[str, Any]]:
    checkpoints, retained = sizes.w6_checkpoints, sizes.w6_retained
    flow = single_flow("bench-w6-memory")
    readings: dict[int, int] = {}
    tracemalloc.start()
    try:
        with Runtime(
            thread_pool_size=4,
            executor="thread",
            max_retained_jobs=retained,
            plugin_manager=KERNEL_ONLY,
        ) as runtime:
            runtime.run(flow)  # the plan and the pool exist before the baseline
            gc.collect()
            base = tracemalloc.get_traced_memory()[0]
            done = 0
            for checkpoint in checkpoints:
                while done < checkpoint:
                    batch = run_jobs(runtime, flow, min(500, checkpoint - done), W6_PER_JOB)
                    check_jobs(batch, W6_PER_JOB, lambda s: s.shared_data.get("done") is True)
                    done += len(batch)
                    del batch
                gc.collect()
                readings[checkpoint] = tracemalloc.get_traced_memory()[0] - base
                kept = len(runtime.list_jobs())
                check(kept == min(retained, done + 1), W6_PER_JOB, f"{kept} jobs retained")
    finally:
        tracemalloc.stop()
    first, middle, last = checkpoints
    per_job = readings[first] / min(first, retained)
    growth = (readings[last] - readings[middle]) / (last - middle)
    seen = "/".join(f"{readings[c] / 1024:,.0f}" for c in checkpoints)
    at = "/".join(f"{c:,}" for c in checkpoints)
    per_job_note = f"tracemalloc after {at} jobs: {seen} KiB (max_retained_jobs={retained})"
    growth_note = f"(memory@{last:,} - memory@{middle:,}) / {last - middle:,} jobs; flat is ~0"
    return [
        row(W6_PER_JOB, "bytes/job", per_job, None, "-", per_job_note),
        row(W6_GROWTH, "bytes/job", growth, None, "< 100", growth_note),
    ]


# -- entry point -------------------------------------------------------------------------


def run(quick: bool) -> list[dict[str, Any]]:
    sizes = QUICK if quick else FULL
    rows: list[dict[str, Any]] = []
    for name, measure in ((W1, w1), (W2, w2), (W3, w3), (W4, w4)):
        if selected(name):
            rows.append(measure(sizes, quick))
    if selected(W5_MEAN) or selected(W5_P99):
        rows.extend(w5(sizes, quick))
    if selected(W6_PER_JOB) or selected(W6_GROWTH):
        rows.extend(w6(sizes, quick))
    return rows
