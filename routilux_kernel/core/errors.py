"""Exception types raised by the kernel; each message names what is at fault and what exists."""

from __future__ import annotations

import traceback


class RoutiluxError(Exception):
    """Base class of every error the kernel raises on purpose."""


class FlowValidationError(RoutiluxError, ValueError):
    """A flow is malformed: unknown ids, events or slots, duplicates, no entry routine."""


class FlowNotFoundError(RoutiluxError, LookupError, ValueError):
    """A flow name or id is not registered.

    Also a ``ValueError``, which is what the original routilux raised, so migrated
    ``except ValueError`` clauses still catch it.
    """

    def __str__(self) -> str:  # LookupError would quote the message like a key
        return str(self.args[0]) if self.args else ""


class UnknownEventError(RoutiluxError, ValueError):
    """``emit`` named an event the routine does not define."""


class EventDataError(RoutiluxError, ValueError):
    """``emit`` sent keys that differ from the params its event declares."""


class NoJobContextError(RoutiluxError, RuntimeError):
    """``emit`` (or another job-bound call) was made outside a running activation."""


class SlotFullError(RoutiluxError):
    """A slot reached its ``max_queue_length``; the emit was refused and nothing was delivered."""


class RuntimeShutDownError(RoutiluxError, RuntimeError):
    """The runtime was shut down and takes no new jobs."""


class JobTimeoutError(RoutiluxError, TimeoutError):
    """A job ran longer than its ``timeout``."""


class JobCancelledError(RoutiluxError):
    """Recorded as a job's error when it was cancelled."""


class ActivationPolicyError(RoutiluxError):
    """An activation policy raised or returned something that is not ``(bool, dict, message)``."""


class ExecutorError(RoutiluxError):
    """An executor is unknown, failed to start, or lost a worker."""


class PluginError(RoutiluxError):
    """A plugin failed to load or registered something invalid."""


class DuplicateRegistrationError(PluginError):
    """Two plugins registered the same name in one registry."""


class RoutineError(RoutiluxError):
    """An exception from routine logic, reduced to picklable text.

    Remote executors return this instead of the original exception, whose class may not
    exist (or not unpickle) on the driver. ``error_type`` is the qualified class name,
    ``remote_traceback`` the formatted traceback from where it was raised, ``error_mro`` the
    ``module.qualname`` of every class in the original's MRO (so a driver-side strategy can
    match ``retryable_exceptions`` by name).
    """

    def __init__(
        self,
        error_type: str,
        message: str,
        remote_traceback: str = "",
        error_mro: tuple[str, ...] = (),
    ) -> None:
        super().__init__(error_type, message, remote_traceback, error_mro)
        self.error_type = error_type
        self.message = message
        self.remote_traceback = remote_traceback
        self.error_mro = tuple(error_mro)

    @classmethod
    def from_exception(cls, exc: BaseException) -> RoutineError:
        """Capture type, message, traceback text and class names of ``exc``."""
        kind = type(exc)
        name = kind.__qualname__
        if kind.__module__ not in ("builtins", "__main__"):
            name = f"{kind.__module__}.{name}"
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        mro = tuple(f"{k.__module__}.{k.__qualname__}" for k in kind.__mro__)
        return cls(name, exception_text(exc), text, mro)

    def __str__(self) -> str:
        return f"{self.error_type}: {self.message}"


def exception_text(error: BaseException) -> str:
    """``str(error)``, even for an exception whose ``__str__`` raises."""
    try:
        return str(error)
    except Exception as failure:  # noqa: BLE001 - the error itself must still be reported
        return f"<str() of the exception raised {type(failure).__name__}: {failure}>"


class ErrorText(str):
    """A job's error as text, as the original routilux stored it, with the exception kept.

    ``"boom" in job_state.error`` and ``job_state.error == "boom"`` read it as text;
    ``.exception`` is the exception object. Attribute reads (``.error_type``,
    ``.__cause__``...) and ``isinstance`` checks pass through to the exception, so code
    written against the exception keeps working; ``type()`` shows this class.
    """

    exception: BaseException

    def __new__(cls, exception: BaseException) -> ErrorText:
        text = super().__new__(cls, exception_text(exception))
        text.__dict__["exception"] = exception
        return text

    # isinstance() falls back to ``__class__`` when the real type does not match.
    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return type(self.__dict__["exception"])

    def __getattr__(self, name: str) -> object:
        try:
            exception = self.__dict__["exception"]
        except KeyError:
            raise AttributeError(name) from None
        return getattr(exception, name)

    def __repr__(self) -> str:
        return repr(self.__dict__["exception"])

    def __reduce__(self) -> tuple[type[str], tuple[str]]:
        return (str, (str(self),))  # travels as plain text; the exception may not pickle
