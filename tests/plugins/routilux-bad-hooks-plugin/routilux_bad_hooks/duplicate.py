"""Registers the executor name ``thread``, which the built-in thread executor owns."""

from routilux_kernel import hookimpl


@hookimpl
def register_executors(register):  # type: ignore[no-untyped-def]
    register("thread", object)
