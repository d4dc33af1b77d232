"""What the PostgreSQL job store costs: W1 and W2 on ``postgresql://`` next to SQLite and
the memory store, in the same run (measured as in ``bench_store``: until every job finished
and the store committed all of it).

The server is a private one started for the run (``initdb`` in a temporary directory, unix
socket, ``fsync=off`` like the test server): what is measured is the store's client side
and the server's work, not a disk. Needs Debian's postgresql server package and the
routilux-postgres plugin; without them the module reports an error and the others run.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

from bench._harness import best_of, row, selected
from bench.bench_kernel import chain_flow, single_flow
from bench.bench_store import LENGTH, POOL, seconds_for

W1_POSTGRES = "job store: one-routine jobs, postgresql vs memory (sqlite in note)"
W2_POSTGRES = "job store: chain of 20 routines, postgresql vs memory (sqlite in note)"
WORKLOADS = [W1_POSTGRES, W2_POSTGRES]


def _measure(workload, flow, jobs, expect, quick, server_url, folder) -> dict[str, float]:
    counter = iter(range(1_000_000))

    def sqlite() -> float:
        url = f"sqlite:///{Path(folder) / f'runs{next(counter)}.db'}"
        return seconds_for(flow, jobs, url, workload, expect)

    def postgres() -> float:  # a fresh schema per sample, as sqlite gets a fresh file
        url = f"{server_url}&schema=bench_{uuid.uuid4().hex[:12]}"
        return seconds_for(flow, jobs, url, workload, expect)

    memory, on_sqlite, _ = best_of(
        lambda: seconds_for(flow, jobs, "memory", workload, expect), sqlite, quick
    )
    _, on_postgres, _ = best_of(lambda: 0.0, postgres, quick)
    return {"memory": memory, "sqlite": on_sqlite, "postgresql": on_postgres}


def run(quick: bool) -> list[dict[str, Any]]:
    from testsupport.postgres_server import running_postgres_server

    rows = []
    with running_postgres_server() as server, tempfile.TemporaryDirectory() as folder:
        if selected(W1_POSTGRES):
            jobs = 300 if quick else 2000
            took = _measure(
                W1_POSTGRES,
                single_flow("bench-postgres-w1"),
                jobs,
                lambda s: s.shared_data.get("done") is True,
                quick,
                server.url,
                folder,
            )
            rows.append(
                row(
                    W1_POSTGRES,
                    "jobs/s",
                    jobs / took["postgresql"],
                    jobs / took["memory"],
                    "-",
                    f"{jobs} jobs, pool {POOL}; sqlite: {jobs / took['sqlite']:,.0f} jobs/s",
                )
            )
        if selected(W2_POSTGRES):
            jobs = 50 if quick else 200
            routed = jobs * (LENGTH - 1)
            took = _measure(
                W2_POSTGRES,
                chain_flow(LENGTH),
                jobs,
                lambda s: s.shared_data.get("hops") == LENGTH - 1,
                quick,
                server.url,
                folder,
            )
            rows.append(
                row(
                    W2_POSTGRES,
                    "events/s",
                    routed / took["postgresql"],
                    routed / took["memory"],
                    "-",
                    f"{jobs} jobs x {LENGTH} routines, pool {POOL}; "
                    f"sqlite: {routed / took['sqlite']:,.0f} events/s",
                )
            )
    return rows


if __name__ == "__main__":
    from bench._harness import format_table

    print(format_table(run(quick=False)))
