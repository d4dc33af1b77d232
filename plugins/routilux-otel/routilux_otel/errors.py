"""How a failed activation or job is written on its span."""

from __future__ import annotations

import traceback

from opentelemetry.trace import Span, Status, StatusCode

#: The name of the span event an error becomes (OpenTelemetry's semantic convention).
EXCEPTION_EVENT = "exception"


def describe_error(error: BaseException) -> tuple[dict[str, str], Status]:
    """The ``exception`` event's attributes and the span status for ``error``.

    The attributes are those of the SDK's ``Span.record_exception``; a worker's
    RoutineError is described as the original error it carries.
    """
    remote_type = getattr(error, "error_type", None)
    if isinstance(remote_type, str):  # a RoutineError from a worker: report the original
        message = str(getattr(error, "message", error))
        attributes = {
            "exception.type": remote_type,
            "exception.message": message,
            "exception.stacktrace": str(getattr(error, "remote_traceback", "") or ""),
            "exception.escaped": "False",
        }
        return attributes, Status(StatusCode.ERROR, f"{remote_type}: {message}")
    kind = type(error)
    module = kind.__module__
    qualified = kind.__qualname__
    if module and module != "builtins":
        qualified = f"{module}.{qualified}"
    attributes = {
        "exception.type": qualified,
        "exception.message": str(error),
        "exception.stacktrace": "".join(traceback.format_exception(error)),
        "exception.escaped": "False",
    }
    return attributes, Status(StatusCode.ERROR, f"{kind.__name__}: {error}")


def record_error(span: Span, error: BaseException | None) -> None:
    """An ``exception`` event and an ERROR status on a live span."""
    if error is None or not span.is_recording():
        return
    attributes, status = describe_error(error)
    span.add_event(EXCEPTION_EVENT, attributes)
    span.set_status(status)
