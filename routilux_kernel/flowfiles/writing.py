"""Flow -> flow-file data, so a flow built in code can be saved and loaded again."""

from __future__ import annotations

from typing import Any

from routilux_kernel.core.error_handling import ErrorHandler
from routilux_kernel.core.errors import FlowValidationError
from routilux_kernel.core.flow import Flow
from routilux_kernel.core.policies import CustomPolicy
from routilux_kernel.core.routine import Routine
from routilux_kernel.flowfiles.reading import REGISTERED_NAME_ATTRIBUTE, flow_entry, flow_params


def flow_to_dict(flow: Flow) -> dict[str, Any]:
    """The flow as flow-file data; raises FlowValidationError for a routine no file can name."""
    data: dict[str, Any] = {"flow_id": flow.flow_id}
    if flow.executor is not None:
        data["executor"] = (
            {"name": flow.executor, "options": dict(flow.executor_options)}
            if flow.executor_options
            else flow.executor
        )
    if flow.error_handler is not None:
        data["error_handler"] = _handler_data(flow.error_handler)
    routines: dict[str, Any] = {}
    for rid, routine in flow.routines.items():
        entry: dict[str, Any] = {"use": _use_of(flow, rid, routine)}
        if routine.config:
            entry["config"] = dict(routine.config)
        handler = routine.get_error_handler()
        if handler is not None:
            entry["error_handler"] = _handler_data(handler)
        policy = _policy_data(routine.get_activation_policy())
        if policy is not None:
            entry["activation_policy"] = policy
        if routine.executor is not None:
            entry["executor"] = routine.executor
        if routine.concurrency != 1:
            entry["concurrency"] = routine.concurrency
        routines[rid] = entry
    data["routines"] = routines
    data["connections"] = [str(connection) for connection in flow.connections]
    entry_ids = flow_entry(flow)
    if entry_ids is not None:
        data["entry"] = list(entry_ids)
    params = flow_params(flow)
    if params:
        data["params"] = params
    return data


def _use_of(flow: Flow, routine_id: str, routine: Routine) -> str:
    registered: str | None = getattr(routine, REGISTERED_NAME_ATTRIBUTE, None)
    if registered:
        return registered
    cls = type(routine)
    if cls is Routine or "<locals>" in cls.__qualname__:
        raise FlowValidationError(
            f"flow {flow.flow_id!r}: routine {routine_id!r} is a {cls.__qualname__} that a flow "
            "file cannot name; define a Routine subclass at module level (or register it)"
        )
    return f"{cls.__module__}:{cls.__qualname__}"


def _handler_data(handler: ErrorHandler) -> dict[str, Any]:
    data = handler.to_dict()
    if tuple(handler.retryable_exceptions) != (Exception,):
        data["retryable_exceptions"] = [_importable_name(e) for e in handler.retryable_exceptions]
    return data


def _policy_data(policy: Any) -> Any:
    """A policy as a name or ``{name:, **options}``; None when data cannot express it."""
    if policy is None:
        return None
    function = policy.fn if isinstance(policy, CustomPolicy) else None
    to_dict = getattr(policy, "to_dict", None)
    if function is None and callable(to_dict):
        data = to_dict()
        if not isinstance(data, dict) or "name" not in data:
            return None
        return data["name"] if len(data) == 1 else dict(data)
    function = function or policy
    qualname = getattr(function, "__qualname__", "<")
    if "<" in qualname or not getattr(function, "__module__", None):
        return None  # a lambda or closure: the routine class is expected to set it again
    return {"name": "custom", "fn": f"{function.__module__}:{qualname}"}


def _importable_name(cls: type) -> str:
    return cls.__name__ if cls.__module__ == "builtins" else f"{cls.__module__}:{cls.__qualname__}"
