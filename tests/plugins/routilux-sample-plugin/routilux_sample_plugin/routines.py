"""The routine this plugin contributes, created by name as ``sample.upper``."""

from __future__ import annotations

import threading
from typing import Any

from routilux_kernel import JobState, Routine


class Upper(Routine):
    """Upper-cases the ``text`` of every item in its ``trigger`` slot and emits it on ``output``.

    Config: ``prefix`` (str, default ""), put in front of every result. Each emit also
    carries ``worker``, the name of the thread that ran the logic.
    """

    def __init__(self) -> None:
        super().__init__()
        self.add_slot("trigger")
        self.add_event("output", ["text", "worker"])
        self.set_config(prefix="")

    def logic(self, slot_data: dict[str, Any], policy_message: Any, job_state: JobState) -> None:
        prefix = self.get_config("prefix", "")
        for item in slot_data["trigger"]:
            text = item.get("text")
            if not isinstance(text, str):
                raise ValueError(
                    f"sample.upper: every trigger item needs a 'text' string, got {item!r}"
                )
            worker = threading.current_thread().name
            self.emit("output", text=prefix + text.upper(), worker=worker)
