"""The hook implementations routilux loads through the ``routilux`` entry point."""

from __future__ import annotations

from collections.abc import Callable

from routilux_kernel import Flow, JobState, hookimpl
from routilux_sample_plugin.executor import SampleThreadExecutor
from routilux_sample_plugin.policies import every_n
from routilux_sample_plugin.routines import Upper
from routilux_sample_plugin.strategies import RecordAndContinue

#: (job_id, status) of every job this process finished, in order: what job_finished saw.
FINISHED_JOBS: list[tuple[str, str]] = []


@hookimpl
def register_routines(register: Callable[..., None]) -> None:
    register("sample.upper", Upper)


@hookimpl
def register_executors(register: Callable[..., None]) -> None:
    register("sample.threads", SampleThreadExecutor)


@hookimpl
def register_activation_policies(register: Callable[..., None]) -> None:
    register("sample.every_n", every_n)


@hookimpl
def register_error_strategies(register: Callable[..., None]) -> None:
    register("sample.record_and_continue", RecordAndContinue())


@hookimpl
def job_finished(job_state: JobState, flow: Flow) -> None:
    # Runs before anyone waiting on the job wakes, so callers of wait() see this.
    job_state.shared_data["sample.finished"] = str(job_state.status)
    FINISHED_JOBS.append((job_state.job_id, str(job_state.status)))
