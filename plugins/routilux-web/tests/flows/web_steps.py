"""Routines for the dashboard tests, imported by the flow files next to them (module:Class)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from routilux_kernel import Routine

#: What the escaping tests look for: it must show as text, never run.
SCRIPT = "<script>document.title='owned'</script>"


class Remember(Routine):
    """Keeps a note (with markup in it) in shared data and the log, then passes ``n`` on."""

    def __init__(self) -> None:
        super().__init__()
        self.add_slot("trigger")
        self.add_event("out", ["n"])

    def logic(self, slot_data: dict[str, Any], message: Any, job_state: Any) -> None:
        job_state.shared_data["note"] = SCRIPT
        job_state.shared_log.append("remembered")
        self.emit("out", n=int(slot_data["trigger"][0].get("n", 1)))


class Double(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.add_slot("input")

    def logic(self, slot_data: dict[str, Any], message: Any, job_state: Any) -> None:
        job_state.update_routine_state("double", {"result": slot_data["input"][0]["n"] * 2})


class Explode(Routine):
    """Fails with markup in its message, so the traceback shown must be escaped."""

    def __init__(self) -> None:
        super().__init__()
        self.add_slot("trigger")

    def logic(self, slot_data: dict[str, Any], message: Any, job_state: Any) -> None:
        raise ValueError(f"bad input {SCRIPT}")


class Gate(Routine):
    """Waits until the file named by the entry param ``gate`` exists, or the job is cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self.add_slot("trigger")

    def logic(self, slot_data: dict[str, Any], message: Any, job_state: Any) -> None:
        gate = Path(slot_data["trigger"][0]["gate"])
        while not gate.exists() and not job_state.cancel_requested:
            time.sleep(0.01)
        job_state.update_routine_state("wait", {"opened": gate.exists()})
