"""The job store's W1 and W2 counted in CPU instructions, which a busy machine cannot move.

    python -m bench.instructions            # needs valgrind (Debian: apt-get install valgrind)

Each workload runs under valgrind's callgrind for 1 and for 3 rounds, on the memory store and
on a SQLite store; a round costs the difference over 2. The holding time of the grouped
writer is raised so that every job ends within it, as it does at full speed (under valgrind
a job runs some 50 times slower). It takes a few minutes. Not part of ``make bench``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile

ROUND = """
import sys, tempfile
from routilux_kernel.stores import grouped_writer
grouped_writer.HOLD_SECONDS = 60.0
from bench.bench_kernel import chain_flow, run_jobs, single_flow
from routilux_kernel import Runtime
store, workload, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
flow, jobs = (single_flow("w1"), 2000) if workload == "W1" else (chain_flow(20), 200)
with Runtime(thread_pool_size=4, executor="thread", store=store) as runtime:
    for _ in range(rounds):
        run_jobs(runtime, flow, jobs, workload, {"hop": 0})
        runtime.store.flush()
"""


def instructions(store: str, workload: str, rounds: int) -> int:
    """Instructions of one process that runs ``rounds`` rounds of ``workload``."""
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            "-c",
            ROUND,
            store,
            workload,
            str(rounds),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"valgrind printed no instruction count:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def per_round(store: str, workload: str, folder: str) -> float:
    """Instructions a round costs; ``store``: ``memory`` or ``sqlite`` (a fresh file a run)."""
    counts = []
    for rounds in (3, 1):
        url = store if store == "memory" else f"sqlite:///{folder}/{workload}-{rounds}.db"
        counts.append(instructions(url, workload, rounds))
    return (counts[0] - counts[1]) / 2


def main() -> int:
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as folder:
        for workload in ("W1", "W2"):
            memory = per_round("memory", workload, folder)
            sqlite = per_round("sqlite", workload, folder)
            print(
                f"{workload}: memory {memory / 1e6:.0f} M, sqlite {sqlite / 1e6:.0f} M "
                f"instructions a round; ratio {memory / sqlite:.3f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
