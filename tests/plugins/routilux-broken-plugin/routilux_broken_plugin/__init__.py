"""Imports a dependency that is never installed, as a plugin with a missing requirement does."""

from routilux_missing_dependency import engine  # noqa: F401  (fails: the point of this plugin)

from routilux_kernel import hookimpl


@hookimpl
def register_routines(register):  # type: ignore[no-untyped-def]
    register("broken.never", object)
