"""The library's logger: loguru's own, imported on first use.

Importing loguru costs about 0.1 s (it pulls in asyncio, multiprocessing and logging), more
than the rest of the kernel, and most runs never log. Modules use ``logger`` from here
exactly as ``from loguru import logger``; the first attribute access imports loguru.

The library stays silent until the application enables it: on loading, loguru is told
``disable("routilux_kernel")``, unless the application already said something about
``routilux_kernel`` itself (``logger.enable(...)`` before the library's first record), which
is then kept. The package ``__init__`` loads eagerly when loguru is already imported.
"""

from __future__ import annotations

import sys
from contextvars import ContextVar
from typing import Any

PACKAGE = "routilux_kernel"

_loguru_logger: Any = None
_log_context: ContextVar[dict[str, Any]] | None = None


#: Methods that make a record (and ``opt``, which only precedes one).
_RECORDING = frozenset(
    {"trace", "debug", "info", "success", "warning", "error", "critical", "exception", "log", "opt"}
)


class LazyLogger:
    """Stands in for ``loguru.logger``; every attribute is the real logger's.

    A record made while nobody has imported loguru is dropped without importing it: the
    library's records are off until the application enables them, which takes loguru (its
    own import, ``logger.enable`` or :func:`configure_logging`), so such a record could not
    reach any sink.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        if _loguru_logger is None and name in _RECORDING and "loguru" not in sys.modules:
            return self._unheard if name != "opt" else self._opt
        return getattr(load_loguru(), name)

    @staticmethod
    def _unheard(*args: Any, **kwargs: Any) -> None:
        return None

    def _opt(self, *args: Any, **kwargs: Any) -> LazyLogger:
        return self  # its record method decides again whether anyone can hear it

    def __repr__(self) -> str:
        return "<routilux_kernel logger (loguru, loaded on first use)>"


logger: Any = LazyLogger()


def load_loguru() -> Any:
    """Import loguru's logger (once) and keep the library's records off by default."""
    global _loguru_logger
    if _loguru_logger is None:
        from loguru import logger as real_logger

        if not _application_decided(real_logger):
            real_logger.disable(PACKAGE)
        _loguru_logger = real_logger
    return _loguru_logger


def loguru_context() -> ContextVar[dict[str, Any]] | None:
    """loguru's context variable (what ``bind``/``contextualize`` fill), once loguru is in use.

    Setting it binds ``extra`` keys for the current context without the process-wide lock
    ``contextualize()`` takes. None while nobody has imported loguru: no record can be made.
    """
    global _log_context
    if _log_context is None:
        _log_context = getattr(sys.modules.get("loguru._logger"), "context", None)
    return _log_context


def _application_decided(real_logger: Any) -> bool:
    activations = getattr(getattr(real_logger, "_core", None), "activation_list", ())
    prefix = PACKAGE + "."
    return any(str(name).startswith(prefix) for name, _ in activations)
