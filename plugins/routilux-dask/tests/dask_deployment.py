"""A real multi-process Dask deployment for tests: ``dask scheduler`` and ``dask worker``
subprocesses on 127.0.0.1, as a user would start them on their machines.

Workers run without a nanny, so a SIGKILL to a worker is final (a nanny would restart it)
and the process the test kills is the one that ran the activation.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from distributed import Client

#: Seconds to wait for the scheduler and workers to come up, or to go away.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


@dataclass
class DaskDeployment:
    """A running scheduler and its workers, by worker name: process and address."""

    scheduler_address: str
    scheduler: subprocess.Popen[bytes]
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    worker_addresses: dict[str, str] = field(default_factory=dict)

    def worker_name_of_pid(self, pid: int) -> str:
        for name, process in self.workers.items():
            if process.pid == pid:
                return name
        raise LookupError(f"pid {pid} is none of the workers {self.worker_pids()}")

    def worker_pids(self) -> dict[str, int]:
        return {name: process.pid for name, process in self.workers.items()}

    def kill_worker(self, name: str) -> None:
        """SIGKILL worker ``name`` and reap it, so it is certainly dead on return."""
        process = self.workers[name]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)


def _log_tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def running_dask_deployment(
    base_dir: Path,
    *,
    worker_count: int = 2,
    worker_python_path: Sequence[Path] = (),
    scheduler_config: Mapping[str, str] | None = None,
) -> Iterator[DaskDeployment]:
    """Start a scheduler and ``worker_count`` one-thread workers; stop them all on exit.

    ``worker_python_path`` is put on the workers' ``PYTHONPATH`` (where the modules of the
    flow's routines and worker plugins are). ``scheduler_config`` holds Dask settings in
    their environment-variable form (``DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES``).
    On exit, every process started (and any child it made) must be gone.
    """
    base_dir.mkdir(parents=True, exist_ok=True)
    scheduler_file = base_dir / "scheduler.json"
    environment = {key: value for key, value in os.environ.items() if not key.startswith("DASK_")}
    environment.pop("ROUTILUX_EXECUTOR", None)
    dask_command = [sys.executable, "-m", "dask"]
    started: list[psutil.Process] = []
    with ExitStack() as cleanup:

        def launch(command: list[str], log_name: str, env: dict[str, str]) -> subprocess.Popen:
            log = cleanup.enter_context(open(base_dir / log_name, "wb"))
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
            cleanup.callback(_stop, process)
            started.append(psutil.Process(process.pid))
            return process

        scheduler = launch(
            [
                *dask_command,
                "scheduler",
                "--host=127.0.0.1",
                "--port=0",
                "--no-dashboard",
                f"--scheduler-file={scheduler_file}",
            ],
            "scheduler.log",
            {**environment, **(scheduler_config or {})},
        )
        # The client waits (up to its timeout) for the file the scheduler writes once it listens.
        client = cleanup.enter_context(
            Client(scheduler_file=str(scheduler_file), timeout=START_TIMEOUT)
        )
        address = client.scheduler.address
        deployment = DaskDeployment(scheduler_address=address, scheduler=scheduler)
        worker_environment = {
            **environment,
            "PYTHONPATH": os.pathsep.join(
                [*map(str, worker_python_path), environment.get("PYTHONPATH", "")]
            ).rstrip(os.pathsep),
        }
        for index in range(worker_count):
            name = f"worker-{index}"
            local_directory = base_dir / name
            local_directory.mkdir()
            deployment.workers[name] = launch(
                [
                    *dask_command,
                    "worker",
                    address,
                    f"--name={name}",
                    "--nthreads=1",
                    "--no-nanny",
                    "--no-dashboard",
                    "--host=127.0.0.1",
                    f"--local-directory={local_directory}",
                    # A worker whose scheduler is gone exits instead of lingering.
                    f"--death-timeout={START_TIMEOUT}",
                ],
                f"{name}.log",
                worker_environment,
            )
        try:
            client.wait_for_workers(worker_count, timeout=START_TIMEOUT)
        except TimeoutError as exc:
            logs = "\n".join(
                f"--- {log.name}\n{_log_tail(log)}" for log in sorted(base_dir.glob("*.log"))
            )
            raise RuntimeError(
                f"{worker_count} dask workers did not join {address} "
                f"within {START_TIMEOUT}s\n{logs}"
            ) from exc
        # No nanny: the process that runs tasks is the one we started, so its pid is known.
        pids = client.run(os.getpid)
        names = {
            address: info["name"] for address, info in client.scheduler_info()["workers"].items()
        }
        reported = {names[address]: pid for address, pid in pids.items()}
        deployment.worker_addresses = {name: address for address, name in names.items()}
        if reported != deployment.worker_pids():
            raise RuntimeError(
                f"workers report pids {reported}, started {deployment.worker_pids()}"
            )
        for process in list(started):
            started.extend(process.children(recursive=True))
        client.close()
        yield deployment
    leftovers = [process for process in started if _is_running(process)]
    if leftovers:
        for process in leftovers:
            process.kill()
        raise AssertionError(
            f"dask processes left running after the deployment stopped: {leftovers}"
        )


def _is_running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
