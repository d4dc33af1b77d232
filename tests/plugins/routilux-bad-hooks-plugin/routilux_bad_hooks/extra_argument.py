"""Implements ``routine_started`` with an argument the hook does not pass (``attempt``)."""

from routilux_kernel import hookimpl


@hookimpl
def routine_started(job_state, routine_id, attempt):  # type: ignore[no-untyped-def]
    job_state.shared_data["bad-hooks.extra-argument"] = attempt
