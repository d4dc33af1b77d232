"""Raises inside a registration hook; its other hooks must never run either."""

from routilux_kernel import hookimpl


@hookimpl
def register_routines(register):  # type: ignore[no-untyped-def]
    register("bad-hooks.half-registered", object)
    raise RuntimeError("licence server unreachable")


@hookimpl
def job_started(job_state, flow):  # type: ignore[no-untyped-def]
    job_state.shared_data["bad-hooks.raising"] = "should not run: this plugin was left out"
