"""How a failed activation or job is written on its span."""

from __future__ import annotations

from opentelemetry.trace import Span, Status, StatusCode


def record_error(span: Span, error: BaseException | None) -> None:
    """An ``exception`` event and an ERROR status; a worker's RoutineError as the original."""
    if error is None or not span.is_recording():
        return
    remote_type = getattr(error, "error_type", None)
    if isinstance(remote_type, str):  # a RoutineError from a worker: report the original
        message = str(getattr(error, "message", error))
        span.record_exception(
            error,
            attributes={
                "exception.type": remote_type,
                "exception.message": message,
                "exception.stacktrace": str(getattr(error, "remote_traceback", "") or ""),
            },
        )
        span.set_status(Status(StatusCode.ERROR, f"{remote_type}: {message}"))
        return
    span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
