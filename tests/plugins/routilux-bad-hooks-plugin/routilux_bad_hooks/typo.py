"""Implements a hook that does not exist (``job_finish`` for ``job_finished``)."""

from routilux_kernel import hookimpl


@hookimpl
def job_finish(job_state, flow):  # type: ignore[no-untyped-def]
    job_state.shared_data["bad-hooks.typo"] = True
