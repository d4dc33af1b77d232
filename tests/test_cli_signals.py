"""``routilux run --executor process`` interrupted by SIGINT or SIGTERM, once or twice.

Every round runs the real command in its own session, waits until the routine's logic runs
in a worker, sends the signals, and checks: the exit status, that it came within 2 s of the
first signal, that the summary of the jobs is on stderr (and valid JSON on stdout with
``--json``), and that no process of the session is left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ROUNDS = 20
#: Rounds run at once (each is mostly waiting: on the interpreter's start, then on signals).
PARALLEL_ROUNDS = 4
EXIT_DEADLINE = 2.0

ROUTINES = """
import os
import sys
import time
from routilux_kernel import Routine

class Waits(Routine):
    '''Says it runs, then waits for the cancel (cooperative) or ignores it (stubborn).'''

    def __init__(self):
        super().__init__()
        self.add_slot("trigger")
        self.set_config(cooperative=True)

    def logic(self, slot_data, message, job_state):
        job_state.shared_data["worker"] = os.getpid()
        print(f"logic runs in {os.getpid()}", file=sys.stderr, flush=True)
        if self.get_config("cooperative"):
            while not job_state.cancel_requested:
                time.sleep(0.01)
        else:
            time.sleep(60)
"""


@pytest.fixture
def flow_file(tmp_path: Path):
    module = f"signal_routines_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(ROUTINES)

    def write(cooperative: bool) -> Path:
        path = tmp_path / f"waits_{cooperative}.yaml"
        config = f"{{cooperative: {str(cooperative).lower()}}}"
        path.write_text(
            textwrap.dedent(
                f"""
                flow_id: waits
                executor: {{name: process, options: {{max_workers: 1}}}}
                routines:
                  waits: {{use: "{module}:Waits", config: {config}}}
                connections: []
                """
            )
        )
        return path

    return write


def interrupt_one_run(flow: Path, signals: list[int], json_output: bool) -> dict[str, object]:
    """Run the flow, signal it once its logic runs; report what a user would see."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "ROUTILUX_LOAD_PLUGINS": ""}
    env.pop("ROUTILUX_EXECUTOR", None)
    command = [sys.executable, "-m", "routilux_kernel.cli", "run", str(flow)]
    process = subprocess.Popen(
        [*command, *(["--json"] if json_output else [])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # the command and its workers, apart from the tests
    )
    assert process.stderr is not None and process.stdout is not None
    first_lines = []
    for line in process.stderr:  # the gate: the logic runs in a worker now
        first_lines.append(line)
        if line.startswith("logic runs in"):
            break
    else:
        process.wait()
        raise AssertionError(f"the logic never ran: {''.join(first_lines)}")
    signalled = time.monotonic()
    for signum in signals:
        os.kill(process.pid, signum)
    try:
        stdout, stderr = process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise AssertionError(f"routilux run did not exit after {signals}") from None
    took = time.monotonic() - signalled
    return {
        "code": process.returncode,
        "took": took,
        "stdout": stdout,
        "stderr": "".join(first_lines) + stderr,
        "left": _processes_in_session(process.pid),
    }


def _processes_in_session(session: int) -> list[str]:
    left = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == session and fields[0] != "Z":  # session id; zombies are dead
            left.append(stat)
    return left


PATTERNS = {
    # name: (signals, cooperative logic, exit status)
    "one SIGINT, logic returns on cancel": ([signal.SIGINT], True, 130),
    "two SIGINTs, logic ignores cancel": ([signal.SIGINT, signal.SIGINT], False, 130),
    "one SIGTERM, logic ignores cancel": ([signal.SIGTERM], False, 143),
    "two SIGTERMs, logic ignores cancel": ([signal.SIGTERM, signal.SIGTERM], False, 143),
}


@pytest.mark.slow  # 20 real runs per pattern: about 12 s each on two cores
@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_interrupted_run_exits_in_time_reports_and_leaves_no_process(flow_file, pattern):
    signals, cooperative, expected_code = PATTERNS[pattern]
    flow = flow_file(cooperative)
    with ThreadPoolExecutor(PARALLEL_ROUNDS) as rounds:
        results = list(
            rounds.map(
                lambda index: interrupt_one_run(flow, signals, json_output=index % 2 == 0),
                range(ROUNDS),
            )
        )
    for index, result in enumerate(results):
        where = f"round {index} ({pattern}): {result['stderr']}"
        assert result["code"] == expected_code, where
        assert result["took"] < EXIT_DEADLINE, where
        assert result["left"] == [], where
        stderr = str(result["stderr"])
        name = signal.Signals(signals[0]).name
        assert f"routilux run: {name} received: cancelled 1 running job(s)" in stderr, where
        assert "flow 'waits': 1 job, 0 completed, 0 failed, 1 cancelled" in stderr, where
        if index % 2 == 0:
            (record,) = json.loads(str(result["stdout"]))
            assert record["status"] == "cancelled", where
        else:
            assert result["stdout"] == "", where
