"""routilux_kernel: an event-driven workflow engine built as a plugin microkernel."""

from loguru import logger

from routilux_kernel.error_handling import ErrorDecision, ErrorHandler, ErrorStrategy
from routilux_kernel.errors import (
    FlowNotFoundError,
    FlowValidationError,
    JobTimeoutError,
    NoJobContextError,
    RoutiluxError,
    RoutineError,
    RuntimeShutDownError,
    SlotFullError,
    UnknownEventError,
)
from routilux_kernel.executors import Executor, ExecutorCapabilities
from routilux_kernel.flow import Connection, Flow
from routilux_kernel.hookspecs import hookimpl, hookspec
from routilux_kernel.job_state import ExecutionStatus, JobState
from routilux_kernel.log_config import configure_logging
from routilux_kernel.monitoring.flow_registry import FlowRegistry
from routilux_kernel.plugins import create_plugin_manager
from routilux_kernel.routine import Event, Routine, Slot
from routilux_kernel.runtime import Runtime

logger.disable("routilux_kernel")

__version__ = "0.1.0"

__all__ = [
    "Connection",
    "ErrorDecision",
    "ErrorHandler",
    "ErrorStrategy",
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
