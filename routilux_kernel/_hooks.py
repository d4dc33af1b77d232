"""The lifecycle hooks a runtime calls, resolved once so unimplemented hooks cost nothing."""

from __future__ import annotations

from typing import Any

import pluggy
from loguru import logger

from routilux_kernel.plugins import DEFAULT_PLUGINS

# Hooks on the per-activation path: left as None when only built-in plugins implement them.
_LIFECYCLE = (
    "job_started",
    "job_finished",
    "routine_started",
    "routine_finished",
    "event_emitted",
    "run_activation",
)


class HookSet:
    """Per-runtime view of the plugin manager's hooks."""

    job_started: Any
    job_finished: Any
    routine_started: Any
    routine_finished: Any
    event_emitted: Any
    run_activation: Any

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        builtin = set(DEFAULT_PLUGINS)
        for name in _LIFECYCLE:
            caller = getattr(pm.hook, name)
            implemented = any(impl.plugin_name not in builtin for impl in caller.get_hookimpls())
            setattr(self, name, caller if implemented else None)
        self.decide_error = pm.hook.decide_error

    def notify(self, caller: Any, **kwargs: Any) -> None:
        """Call an observer hook; a plugin that raises is logged, never fatal to the job."""
        try:
            caller(**kwargs)
        except Exception:
            logger.opt(exception=True).error("plugin hook {} raised", caller.name)
