"""Executors: CPU-bound speed-up of ``process`` over ``thread``, and the per-activation cost
of the ``process`` and ``dask`` executors next to the raw pool doing the same calls.

Every measurement checks its result; a wrong result raises instead of reporting a figure.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor, wait
from typing import Any

from bench._harness import best_of, repeats, row, selected, timed
from routilux_kernel import ExecutionStatus, Flow, JobState, Routine, Runtime

E1 = "E1 CPU-bound flow, 8 jobs x 0.2 s, process vs thread"
E2 = "E2 process executor, one trivial activation"
E3 = "E3 dask executor, one trivial activation"

WORKLOADS = [E1, E2, E3]

WAIT_SECONDS = 120.0
CPU_JOBS = 8
CPU_SECONDS = 0.2


class BenchCheckError(AssertionError):
    """A benchmark did not do the work it measured."""


def check(ok: bool, workload: str, what: str) -> None:
    if not ok:
        raise BenchCheckError(f"{workload}: {what}")


# -- the work (module level, so workers import it instead of unpickling it) ---------------


def spin(rounds: int) -> int:
    """Pure-Python CPU work that holds the GIL throughout."""
    total = 0
    for i in range(rounds):
        total += i * i % 7
    return total


def trivial(value: int) -> int:
    return value


def calibrate(seconds: float) -> int:
    """Rounds of :func:`spin` that take about ``seconds`` on this machine."""
    rounds = 100_000
    while True:
        elapsed, _ = timed(lambda n=rounds: spin(n))
        if elapsed > 0.05:
            return max(1, int(rounds * seconds / elapsed))
        rounds *= 2


def cpu_flow() -> Flow:
    def crunch(slot_data: Any, message: Any, job_state: JobState) -> None:
        rounds = slot_data["trigger"][0]["rounds"]
        job_state.shared_data["total"] = spin(rounds)

    routine = Routine()
    routine.add_slot("trigger")
    routine.set_logic(crunch)
    flow = Flow("bench-cpu")
    flow.add_routine(routine, "crunch")
    return flow


def trivial_flow() -> Flow:
    def touch(slot_data: Any, message: Any, job_state: JobState) -> None:
        job_state.shared_data["done"] = True

    routine = Routine()
    routine.add_slot("trigger")
    routine.set_logic(touch)
    flow = Flow("bench-trivial")
    flow.add_routine(routine, "touch")
    return flow


def run_jobs(
    runtime: Runtime, flow: Flow, jobs: int, workload: str, params: dict[str, Any]
) -> list[JobState]:
    states = [runtime.exec(flow, params) for _ in range(jobs)]
    check(runtime.wait_until_all_jobs_finished(WAIT_SECONDS), workload, "jobs did not finish")
    check(
        all(s.status == ExecutionStatus.COMPLETED for s in states),
        workload,
        f"a job did not complete: {[s.error for s in states if s.error][:1]}",
    )
    return states


# -- E1 ------------------------------------------------------------------------------------


def e1(quick: bool) -> dict[str, Any]:
    rounds = calibrate(CPU_SECONDS)
    expected = spin(rounds)
    flow = cpu_flow()
    workers = os.cpu_count() or 1

    def seconds_on(executor: str) -> float:
        best = float("inf")
        with Runtime(thread_pool_size=workers, executor=executor) as runtime:
            run_jobs(runtime, flow, workers, E1, {"rounds": 1})  # workers up, plan built
            for _ in range(repeats(quick)):
                elapsed, states = timed(
                    lambda: run_jobs(runtime, flow, CPU_JOBS, E1, {"rounds": rounds})
                )
                check(all(s.shared_data["total"] == expected for s in states), E1, "bad total")
                best = min(best, elapsed)
        return best

    threads = seconds_on("thread")
    processes = seconds_on("process")
    note = (
        f"{CPU_JOBS} jobs of {CPU_SECONDS} s pure Python on {workers} cores; ours = process "
        f"executor seconds, floor = thread executor seconds, ratio = speed-up"
    )
    return row(E1, "s", processes, threads, ">= 1.7x", note, ratio=threads / processes)


# -- E2 ------------------------------------------------------------------------------------


def e2(quick: bool) -> dict[str, Any]:
    jobs = 300 if quick else 2000
    workers = 2
    flow = trivial_flow()

    def ours() -> float:
        with Runtime(thread_pool_size=workers, executor="process") as runtime:
            run_jobs(runtime, flow, workers * 4, E2, {})
            elapsed, states = timed(lambda: run_jobs(runtime, flow, jobs, E2, {}))
        check(all(s.shared_data == {"done": True} for s in states), E2, "a write was lost")
        return elapsed

    def floor() -> float:
        with ProcessPoolExecutor(workers) as pool:
            wait([pool.submit(trivial, i) for i in range(workers * 4)])
            elapsed, futures = timed(
                lambda: _all_done([pool.submit(trivial, i) for i in range(jobs)])
            )
        check([f.result() for f in futures] == list(range(jobs)), E2, "floor: wrong results")
        return elapsed

    # Alternating, so that both see the same phase of a machine whose speed drifts.
    floor_s, ours_s, samples = best_of(floor, ours, quick)
    note = (
        f"{jobs} one-routine jobs on 2 worker processes vs ProcessPoolExecutor(2).submit of a "
        "no-op; ours includes job set-up, snapshot, pickling and replay"
    )
    result = row(E2, "us/activation", ours_s / jobs * 1e6, floor_s / jobs * 1e6, "<= 2x", note)
    result["samples_s"] = samples
    return result


def _all_done(futures: list[Any]) -> list[Any]:
    wait(futures, timeout=WAIT_SECONDS)
    return futures


# -- E3 ------------------------------------------------------------------------------------


def e3(quick: bool) -> dict[str, Any]:
    try:
        import dask
        from distributed import Client, LocalCluster
        from routilux_dask import DaskExecutor
    except ImportError as exc:
        return row(E3, "us/activation", float("nan"), None, "-", f"skipped: {exc}")
    jobs = 100 if quick else 1000
    flow = trivial_flow()
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
    try:

        def ours() -> float:
            executor = DaskExecutor(address=cluster.scheduler_address, forward_logs=False)
            with Runtime(executor=executor) as runtime:
                run_jobs(runtime, flow, 8, E3, {})
                elapsed, states = timed(lambda: run_jobs(runtime, flow, jobs, E3, {}))
            check(all(s.shared_data == {"done": True} for s in states), E3, "a write was lost")
            return elapsed

        def floor() -> float:
            with Client(cluster, set_as_default=False) as client:
                client.gather([client.submit(trivial, i, pure=False) for i in range(8)])

                def submit_all() -> list[Any]:
                    return client.gather(
                        [client.submit(trivial, i, pure=False) for i in range(jobs)]
                    )

                elapsed, results = timed(submit_all)
            check(results == list(range(jobs)), E3, "floor: wrong results")
            return elapsed

        ours_s = min(ours() for _ in range(repeats(quick)))
        floor_s = min(floor() for _ in range(repeats(quick)))
    finally:
        cluster.close()
    note = (
        f"{jobs} one-routine jobs on a LocalCluster of 2 worker processes vs "
        "Client.submit(pure=False) + gather of a no-op on the same cluster"
    )
    return row(E3, "us/activation", ours_s / jobs * 1e6, floor_s / jobs * 1e6, "<= 4x", note)


def run(quick: bool) -> list[dict[str, Any]]:
    rows = []
    for name, measure in ((E1, e1), (E2, e2), (E3, e3)):
        if selected(name):
            started = time.perf_counter()
            rows.append(measure(quick))
            rows[-1]["note"] += f" ({time.perf_counter() - started:.1f} s)"
    return rows
