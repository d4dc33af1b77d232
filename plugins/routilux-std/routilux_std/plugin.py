"""The entry point of routilux-std: registers every std routine by its ``std.<name>``."""

from __future__ import annotations

from typing import Any

from routilux_kernel import hookimpl
from routilux_std.catalogue import ROUTINES


@hookimpl
def register_routines(register: Any) -> None:
    for routine_class in ROUTINES:
        register(routine_class.registered_name, routine_class)
