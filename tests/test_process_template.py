"""Process workers are forked from a template process that imported the kernel and plugins."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from routilux_kernel.executors.process.pool import ProcessExecutor

WAIT = 30.0


def parent_pid() -> int:
    return os.getppid()


def loaded_modules() -> list[str]:
    return sorted(sys.modules)


def test_workers_are_children_of_one_template_not_of_the_driver():
    executor = ProcessExecutor(max_workers=2)
    executor.start()
    try:
        busy = executor.submit(time.sleep, 1.0)
        parents = {executor.submit(parent_pid).result(timeout=WAIT) for _ in range(3)}
        busy.result(timeout=WAIT)
        assert len(executor.worker_pids) == 2
        modules = executor.submit(loaded_modules).result(timeout=WAIT)
    finally:
        executor.shutdown()
    (template,) = parents
    assert template != os.getpid()
    # The template imported the installed plugins before forking: a worker has them loaded.
    assert "routilux_std" in modules and "routilux_kernel.executors.remote" in modules


def test_a_new_worker_starts_in_a_few_milliseconds_once_the_template_is_up():
    executor = ProcessExecutor(max_workers=1)
    executor.start()
    starts = []
    try:
        executor.submit(os.getpid).result(timeout=WAIT)  # the template is up
        for _ in range(3):
            doomed = executor.submit(time.sleep, 30)
            deadline = time.monotonic() + WAIT
            while not executor.worker_pids or not doomed.running():
                assert time.monotonic() < deadline
                time.sleep(0.005)
            (old,) = executor.worker_pids
            assert executor.cancel(doomed, force=True)
            started = time.perf_counter()
            new = executor.submit(os.getpid).result(timeout=WAIT)
            starts.append(time.perf_counter() - started)
            assert new != old
    finally:
        executor.shutdown()
    # Noticing the kill, forking, setting up and one round trip; a fresh interpreter
    # that imports the kernel and plugins takes 0.25 s or more here.
    print("worker starts (s):", starts)
    assert min(starts) < 0.05, starts


def test_the_template_ends_with_the_pool_and_leaves_no_process_behind():
    executor = ProcessExecutor(max_workers=2)
    executor.start()
    template = executor.submit(parent_pid).result(timeout=WAIT)
    workers = executor.worker_pids
    executor.shutdown()
    for pid in [template, *workers]:
        assert not Path(f"/proc/{pid}").exists() or _is_zombie_of_other(pid), pid


def _is_zombie_of_other(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_a_script_without_a_main_guard_runs_once(tmp_path: Path):
    script = tmp_path / "unguarded.py"
    script.write_text(
        textwrap.dedent(
            """
            import os
            from routilux_kernel import Flow, Routine, Runtime

            print("script body ran in", "driver" if os.environ.get("MARK") else "?", flush=True)
            os.environ.pop("MARK")

            def work(slot_data, message, job_state):
                job_state.shared_data["pid"] = os.getpid()

            routine = Routine()
            routine.add_slot("trigger")
            routine.set_logic(work)
            flow = Flow("unguarded")
            flow.add_routine(routine, "work")
            with Runtime(executor="process") as runtime:
                states = [runtime.exec(flow) for _ in range(4)]
                runtime.wait_until_all_jobs_finished(30)
            print(sorted({s.status.value for s in states}), os.getpid() not in
                  {s.shared_data["pid"] for s in states})
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "MARK": "1"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["script body ran in driver", "['completed'] True"]


def test_calls_of_main_functions_closures_and_plain_arguments_reach_workers(tmp_path: Path):
    # The kernel's own calls (an importable function, str and bytes arguments) take a fast
    # path through the C pickler; functions of __main__ and closures must still go by value.
    script = tmp_path / "calls.py"
    script.write_text(
        textwrap.dedent(
            """
            import os
            from routilux_kernel.executors.process.pool import ProcessExecutor

            def double(text):
                return text * 2

            def make_adder(step):
                return lambda value: value + step

            executor = ProcessExecutor(max_workers=1)
            executor.start()
            try:
                results = [
                    executor.submit(double, "ab").result(30),
                    executor.submit(make_adder(5), 1).result(30),
                    executor.submit(os.getpid).result(30) != os.getpid(),
                    executor.submit(bytes.fromhex, "6869").result(30),
                    executor.submit(max, 2.5, 1, True).result(30),
                    executor.submit(sorted, [3, 1, 2]).result(30),
                ]
            finally:
                executor.shutdown()
            print(results)
            """
        )
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['abab', 6, True, b'hi', 2.5, [1, 2, 3]]"
