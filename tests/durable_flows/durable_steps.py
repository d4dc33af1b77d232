"""Routines for the job-store tests, imported by flow files next to them (module:Class)."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from routilux_kernel import Routine


class CountingStep(Routine):
    """Counts its activations in its routine state, waits a random moment, forwards ``n + 1``.

    ``hold_file``: the logic waits until that file exists (a gate the test opens), so a
    crash can be placed while this routine runs.
    """

    def __init__(self) -> None:
        super().__init__()
        self.add_slot("trigger")
        self.add_event("out", ["n"])

    def logic(
        self, slot_data: dict[str, list[dict[str, Any]]], message: Any, job_state: Any
    ) -> None:
        routine_id = job_state.current_routine_id
        hold = self.get_config("hold_file")
        if hold:
            while not Path(hold).exists():
                time.sleep(0.01)
        delay = float(self.get_config("max_delay", 0.0))
        for item in slot_data["trigger"]:
            if delay:
                time.sleep(random.uniform(0, delay))
            count = job_state.get_routine_state(routine_id, {}).get("count", 0)
            job_state.update_routine_state(routine_id, {"count": count + 1})
            job_state.shared_log.append(routine_id)
            self.emit("out", n=int(item.get("n", 0)) + 1)


class AsyncCountingStep(Routine):
    """``async def`` logic (it runs on the runtime's event loop): counts, logs, forwards."""

    def __init__(self) -> None:
        super().__init__()
        self.add_slot("trigger")
        self.add_event("out", ["n"])

    async def logic(
        self, slot_data: dict[str, list[dict[str, Any]]], message: Any, job_state: Any
    ) -> None:
        import asyncio

        routine_id = job_state.current_routine_id
        for item in slot_data["trigger"]:
            await asyncio.sleep(0)  # the writes below happen after a real suspension
            count = job_state.get_routine_state(routine_id, {}).get("count", 0)
            job_state.update_routine_state(routine_id, {"count": count + 1})
            job_state.shared_log.append(routine_id)
            job_state.shared_data[routine_id] = item.get("n", 0)
            self.emit("out", n=int(item.get("n", 0)) + 1)


class AlwaysFailing(Routine):
    """Counts its activations in ``shared_data["<id> runs"]``, then raises."""

    def __init__(self) -> None:
        super().__init__()
        self.add_slot("trigger")

    def logic(
        self, slot_data: dict[str, list[dict[str, Any]]], message: Any, job_state: Any
    ) -> None:
        key = f"{job_state.current_routine_id} runs"
        job_state.shared_data[key] = job_state.shared_data.get(key, 0) + 1
        raise ValueError("this routine always fails")
