"""routilux-std: the standard routine library of routilux_kernel, registered as ``std.<name>``."""

from routilux_std.base import StdRoutine, check_config
from routilux_std.catalogue import ROUTINES
from routilux_std.errors import (
    ExtractionError,
    HttpRequestFailedError,
    HttpStatusError,
    HttpTimeoutError,
    ShellCommandError,
    StdConfigError,
    StdInputError,
    StdRoutineError,
)

__all__ = [
    "ROUTINES",
    "ExtractionError",
    "HttpRequestFailedError",
    "HttpStatusError",
    "HttpTimeoutError",
    "ShellCommandError",
    "StdConfigError",
    "StdInputError",
    "StdRoutine",
    "StdRoutineError",
    "check_config",
]
