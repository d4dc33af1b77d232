"""The errors std routines raise; each message names the routine and the key, file or URL."""

from __future__ import annotations


class StdRoutineError(Exception):
    """Base of every error a std routine raises on purpose."""


class StdConfigError(StdRoutineError, ValueError):
    """A config value is missing, of the wrong type, or cannot be used (bad JMESPath, import)."""


class StdInputError(StdRoutineError, ValueError):
    """Input the routine reads is unusable: a missing file, a CSV row that cannot be read."""


class HttpStatusError(StdRoutineError, ConnectionError):
    """An HTTP request answered with a status outside 2xx."""


class HttpRequestFailedError(StdRoutineError, ConnectionError):
    """An HTTP request could not be made (refused, reset, DNS)."""


class HttpTimeoutError(StdRoutineError, TimeoutError):
    """An HTTP request took longer than its ``timeout``."""


class ShellCommandError(StdRoutineError, RuntimeError):
    """A shell command exited with a non-zero code, timed out, or could not start."""


class ExtractionError(StdRoutineError, ValueError):
    """Text held no JSON, YAML or code block of the kind asked for."""
