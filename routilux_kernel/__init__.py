"""routilux_kernel: an event-driven workflow engine built as a plugin microkernel."""

import sys
from typing import TYPE_CHECKING, Any

import routilux_kernel.builtin_plugins  # noqa: F401 - the composition root, first
from routilux_kernel.core.error_handling import (
    ActivationFailure,
    ErrorAction,
    ErrorDecision,
    ErrorHandler,
    ErrorStrategy,
)
from routilux_kernel.core.errors import (
    ActivationPolicyError,
    ErrorText,
    EventDataError,
    ExecutorError,
    FlowNotFoundError,
    FlowValidationError,
    JobCancelledError,
    JobTimeoutError,
    NoJobContextError,
    RoutiluxError,
    RoutineError,
    RuntimeShutDownError,
    SlotFullError,
    UnknownEventError,
)
from routilux_kernel.core.execution_record import ExecutionRecord
from routilux_kernel.core.flow import Connection, Flow
from routilux_kernel.core.job_state import ExecutionStatus, JobState
from routilux_kernel.core.lazy_logger import load_loguru
from routilux_kernel.core.routine import Event, Routine, Slot
from routilux_kernel.engine.flow_registry import FlowRegistry
from routilux_kernel.engine.log_config import configure_logging
from routilux_kernel.engine.runtime import Runtime
from routilux_kernel.executors.contract import Executor, ExecutorCapabilities
from routilux_kernel.hooks.manager import create_plugin_manager
from routilux_kernel.hooks.specs import hookimpl, hookspec

if TYPE_CHECKING:
    from routilux_kernel.executors.remote import WorkerCrashedError

if "loguru" in sys.modules:  # already paid for: silence the library now, as before any record
    load_loguru()

__version__ = "0.1.0"

#: Exported names whose modules load on first access: the remote protocol (and pickling)
#: costs start-up time that a program without remote executors never needs.
_LAZY_EXPORTS = {"WorkerCrashedError": "routilux_kernel.executors.remote"}


def __getattr__(name: str) -> Any:
    module_name = _LAZY_EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'routilux_kernel' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


__all__ = [
    "ActivationFailure",
    "ErrorAction",
    "ActivationPolicyError",
    "ExecutorError",
    "JobCancelledError",
    "WorkerCrashedError",
    "Connection",
    "ErrorDecision",
    "ErrorHandler",
    "ErrorStrategy",
    "ErrorText",
    "EventDataError",
    "ExecutionRecord",
    "Event",
    "ExecutionStatus",
    "Executor",
    "ExecutorCapabilities",
    "Flow",
    "FlowNotFoundError",
    "FlowRegistry",
    "FlowValidationError",
    "JobState",
    "JobTimeoutError",
    "NoJobContextError",
    "RoutineError",
    "RoutiluxError",
    "Routine",
    "Runtime",
    "RuntimeShutDownError",
    "Slot",
    "SlotFullError",
    "UnknownEventError",
    "__version__",
    "configure_logging",
    "create_plugin_manager",
    "hookimpl",
    "hookspec",
]
