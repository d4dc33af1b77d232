"""Logging switches. The library logs through loguru and is silent until enabled here."""

from __future__ import annotations

import sys
from typing import Any

from routilux_kernel.core.lazy_logger import logger

_FORMAT = (
    "<green>{time:HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
    "<cyan>{extra[job_id]}</cyan> <cyan>{extra[routine_id]}</cyan> {message}"
)


def configure_logging(level: str = "INFO", sink: Any = None, **options: Any) -> int:
    """Enable routilux_kernel's logs and add one sink (stderr by default); returns its id.

    Records carry ``job_id`` and ``routine_id`` in ``extra`` ("-" outside an activation).
    With the default sink, loguru's own default stderr handler is removed (if it is still
    installed) so records are not printed twice.
    """
    if sink is None:
        try:
            logger.remove(0)
        except ValueError:
            pass  # already removed by the application
    logger.enable("routilux_kernel")
    logger.configure(extra={"job_id": "-", "routine_id": "-"})
    options.setdefault("format", _FORMAT)
    return logger.add(sink if sink is not None else sys.stderr, level=level, **options)


def disable_logging() -> None:
    logger.disable("routilux_kernel")
