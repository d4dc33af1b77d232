"""routilux_kernel: an event-driven workflow engine built as a plugin microkernel.

The names below load on first use (PEP 562): ``import routilux_kernel`` costs only the
composition root and the core contracts, and a process that never touches, say, the
Runtime (a worker, ``routilux --help``) never imports the engine.
"""

import sys
from typing import TYPE_CHECKING, Any

import routilux_kernel.builtin_plugins  # noqa: F401 - the composition root, first
from routilux_kernel.core.lazy_logger import load_loguru

if TYPE_CHECKING:
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
    from routilux_kernel.core.flow import (
        Connection,
        Flow,
    )
    from routilux_kernel.core.job_state import (
        ExecutionStatus,
        JobState,
    )
    from routilux_kernel.core.routine import (
        Event,
        Routine,
        Slot,
    )
    from routilux_kernel.engine.flow_registry import FlowRegistry
    from routilux_kernel.engine.log_config import configure_logging
    from routilux_kernel.engine.runtime import Runtime
    from routilux_kernel.executors.contract import (
        Executor,
        ExecutorCapabilities,
    )
    from routilux_kernel.executors.remote import WorkerCrashedError
    from routilux_kernel.hooks.manager import create_plugin_manager
    from routilux_kernel.hooks.specs import (
        hookimpl,
        hookspec,
    )

if "loguru" in sys.modules:  # already paid for: silence the library now, as before any record
    load_loguru()

__version__ = "0.1.0"

#: Exported name -> the module that defines it, imported when the name is first used.
_EXPORTS = {
    "ActivationFailure": "routilux_kernel.core.error_handling",
    "ErrorAction": "routilux_kernel.core.error_handling",
    "ErrorDecision": "routilux_kernel.core.error_handling",
    "ErrorHandler": "routilux_kernel.core.error_handling",
    "ErrorStrategy": "routilux_kernel.core.error_handling",
    "ActivationPolicyError": "routilux_kernel.core.errors",
    "ErrorText": "routilux_kernel.core.errors",
    "EventDataError": "routilux_kernel.core.errors",
    "ExecutorError": "routilux_kernel.core.errors",
    "FlowNotFoundError": "routilux_kernel.core.errors",
    "FlowValidationError": "routilux_kernel.core.errors",
    "JobCancelledError": "routilux_kernel.core.errors",
    "JobTimeoutError": "routilux_kernel.core.errors",
    "NoJobContextError": "routilux_kernel.core.errors",
    "RoutiluxError": "routilux_kernel.core.errors",
    "RoutineError": "routilux_kernel.core.errors",
    "RuntimeShutDownError": "routilux_kernel.core.errors",
    "SlotFullError": "routilux_kernel.core.errors",
    "UnknownEventError": "routilux_kernel.core.errors",
    "ExecutionRecord": "routilux_kernel.core.execution_record",
    "Connection": "routilux_kernel.core.flow",
    "Flow": "routilux_kernel.core.flow",
    "ExecutionStatus": "routilux_kernel.core.job_state",
    "JobState": "routilux_kernel.core.job_state",
    "Event": "routilux_kernel.core.routine",
    "Routine": "routilux_kernel.core.routine",
    "Slot": "routilux_kernel.core.routine",
    "FlowRegistry": "routilux_kernel.engine.flow_registry",
    "configure_logging": "routilux_kernel.engine.log_config",
    "Runtime": "routilux_kernel.engine.runtime",
    "Executor": "routilux_kernel.executors.contract",
    "ExecutorCapabilities": "routilux_kernel.executors.contract",
    "WorkerCrashedError": "routilux_kernel.executors.remote",
    "create_plugin_manager": "routilux_kernel.hooks.manager",
    "hookimpl": "routilux_kernel.hooks.specs",
    "hookspec": "routilux_kernel.hooks.specs",
}


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'routilux_kernel' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


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
