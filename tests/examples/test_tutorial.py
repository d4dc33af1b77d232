"""The five tutorial programs, run as their own processes, print what the tutorial promises."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from routilux_kernel import ErrorHandler, ErrorStrategy, Flow, Routine
from routilux_kernel.activation_policies import immediate_policy

TUTORIAL = Path(__file__).resolve().parents[2] / "examples" / "tutorial"
WAIT = 10.0


def run_program(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTILUX_")}
    result = subprocess.run(
        [sys.executable, *args],
        cwd=TUTORIAL,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return result


# The programs print from several threads at once; print() writes the text and the newline
# separately, so lines can interleave. Counting matches in the whole output is robust to that.


def run_step(n: int) -> str:
    return run_program(str(TUTORIAL / f"step{n}.py")).stdout


def seconds_after(label: str, output: str) -> float:
    match = re.search(rf"{re.escape(label)} ([0-9.]+)s", output)
    assert match, f"no {label!r} line in:\n{output}"
    return float(match.group(1))


def test_step1_pool_of_one_runs_the_jobs_one_after_another() -> None:
    output = run_step(1)
    assert output.count("Operation1 completed") == 3
    assert 0.55 <= seconds_after("Time with pool_size=1:", output) <= 1.2


def test_step2_pool_of_five_runs_the_jobs_together() -> None:
    output = run_step(2)
    assert output.count("] Operation completed") == 3
    assert 0.18 <= seconds_after("Time with pool_size=5:", output) < 0.45


def test_step3_every_fetchers_data_reaches_the_collector_in_every_job() -> None:
    output = run_step(3)
    collected = Counter(re.findall(r"Collected: Data from (Source\d) from (Source\d)", output))
    assert collected == {(f"Source{i}", f"Source{i}"): 3 for i in range(3)}
    fetched = Counter(re.findall(r"Fetched: Data from (Source\d)", output))
    assert fetched == {f"Source{i}": 3 for i in range(3)}
    assert seconds_after("Total time:", output) < 0.5


def test_step4_each_job_counts_once() -> None:
    output = run_step(4)
    assert re.findall(r"Count: (\d+)", output) == ["1"] * 5
    assert output.rstrip().endswith("Final count: 1")


# Runs step5 unchanged, but keeps the JobStates it creates, to check job 0 from outside.
STEP5_OBSERVED = """
import runpy, sys
from routilux_kernel.runtime import Runtime
states = []
original = Runtime.exec
def exec_and_keep(self, *args, **kwargs):
    state = original(self, *args, **kwargs)
    states.append(state)
    return state
Runtime.exec = exec_and_keep
runpy.run_path(sys.argv[1], run_name="__main__")
first = states[0]
print("OBSERVED", len(states), first.status, len(first.errors),
      sum(1 for s in states if s.status != "completed"))
"""


@pytest.mark.parametrize("run", range(3))
def test_step5_aggregates_each_jobs_successes_and_never_crashes(run: int) -> None:
    output = run_program("-c", STEP5_OBSERVED, str(TUTORIAL / "step5.py")).stdout
    total = int(re.search(r"^Total responses: (\d+)$", output, flags=re.MULTILINE).group(1))
    observed = re.search(r"^OBSERVED (\d+) (\w+) (\d+) (\d+)$", output, flags=re.MULTILINE)
    assert observed, output
    jobs, first_status, first_failures, unfinished = observed.groups()
    assert (int(jobs), first_status, int(unfinished)) == (5, "completed", 0)
    # a failed call is recorded (CONTINUE) and its response is missing from job 0's log
    assert total == 5 - int(first_failures)
    responses = Counter(re.findall(r"\] Response from ([A-Za-z]+API)", output))
    aggregated = Counter(re.findall(r"Aggregated: Response from ([A-Za-z]+API) from \1", output))
    assert responses == aggregated
    assert sum(responses.values()) <= 25
    assert all(count <= 5 for count in responses.values())


def test_step5_plain_run_prints_its_summary() -> None:
    output = run_step(5)
    assert output.startswith("Starting parallel API calls...")
    assert re.search(r"^Completed in [0-9.]+s$", output, flags=re.MULTILINE)
    total = int(re.search(r"^Total responses: (\d+)$", output, flags=re.MULTILINE).group(1))
    assert 0 <= total <= 5


# -- step 5 in this process, with the failures chosen per job ------------------------------


class APICaller(Routine):
    """Step 5's caller; whether it fails comes from the job's entry params, not chance."""

    def __init__(self) -> None:
        super().__init__()
        self.set_config(api_name="API", delay=0.01)
        self.trigger = self.add_slot("trigger")
        self.output = self.add_event("output", ["response", "api_name"])

        def call_api(slot_data, policy_message, job_state):
            api_name = self.get_config("api_name", "API")
            time.sleep(self.get_config("delay", 0.01))
            if api_name in slot_data["trigger"][0]["failing"]:
                raise Exception(f"{api_name} temporarily unavailable")
            self.emit("output", response=f"Response from {api_name}", api_name=api_name)

        self.set_logic(call_api)
        self.set_activation_policy(immediate_policy())

    def get_error_handler(self) -> ErrorHandler:
        return ErrorHandler(strategy=ErrorStrategy.CONTINUE)


class ResponseAggregator(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.input = self.add_slot("input")

        def aggregate(slot_data, policy_message, job_state):
            for item in slot_data.get("input", []):
                job_state.shared_log.append(
                    {
                        "api": item["api_name"],
                        "response": item["response"],
                        "timestamp": time.time(),
                    }
                )

        self.set_logic(aggregate)
        self.set_activation_policy(immediate_policy())


API_NAMES = ["UsersAPI", "OrdersAPI", "ProductsAPI", "InventoryAPI", "AnalyticsAPI"]


def test_step5_each_job_logs_exactly_its_successful_responses(make_runtime) -> None:
    import random

    flow = Flow(flow_id="api_flow")
    flow.set_error_handler(ErrorHandler(strategy=ErrorStrategy.CONTINUE))
    flow.add_routine(ResponseAggregator(), "aggregator")
    chooser = random.Random(20240611)
    for api_name in API_NAMES:
        caller = APICaller()
        caller.set_config(api_name=api_name, delay=chooser.uniform(0.005, 0.015))
        flow.add_routine(caller, api_name)
        flow.connect(api_name, "output", "aggregator", "input")

    runtime = make_runtime(thread_pool_size=10)
    plans: list[set[str]] = [set(), set(API_NAMES)]  # none fail, all fail, then random subsets
    plans += [{a for a in API_NAMES if chooser.random() < 0.3} for _ in range(18)]
    states: list[Any] = [runtime.exec(flow, {"failing": sorted(p)}) for p in plans]
    assert runtime.wait_until_all_jobs_finished(timeout=WAIT)
    for failing, state in zip(plans, states, strict=True):
        assert state.status == "completed"
        logged = sorted(entry["api"] for entry in state.shared_log)
        assert logged == sorted(set(API_NAMES) - failing)
        assert all(e["response"] == f"Response from {e['api']}" for e in state.shared_log)
        assert sorted(e["routine_id"] for e in state.errors) == sorted(failing)
        assert all(e["action"] == "continue" for e in state.errors)
