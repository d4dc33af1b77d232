"""Routines that pace a stream: debounce (wait for quiet) and rate limit (per second, per job).

Both wait on the kernel's timers through their activation policy, never a sleeping thread,
and keep the job open until what they hold is delivered.
"""

from __future__ import annotations

from typing import Any

from routilux_kernel import JobState
from routilux_std.base import StdRoutine
from routilux_std.errors import StdConfigError
from routilux_std.policies import Debounce as DebouncePolicy
from routilux_std.policies import RateLimit as RateLimitPolicy
from routilux_std.record_shape import RECORD_PARAMS, incoming, send

SlotData = dict[str, list[dict[str, Any]]]


class Debounce(StdRoutine):
    """Emit only the last record of a burst, once no new one arrived for ``seconds``.

    ``out(record)`` carries the last record; ``burst(count)`` says how many it stood for.
    With ``keep: all`` the whole burst is emitted as one chunk instead.
    """

    registered_name = "std.debounce"
    config_schema = {
        "seconds": {"type": "number", "default": 0.1, "description": "quiet time before emitting"},
        "keep": {
            "type": "string",
            "default": "last",
            "enum": ["last", "all"],
            "description": "emit the last record of a burst, or all of them as one chunk",
        },
    }

    def __init__(self) -> None:
        super().__init__()
        self.add_slot("in", max_queue_length=100_000)
        self.add_event("out", optional=RECORD_PARAMS)
        self.add_event("burst", ("count",))
        self.set_activation_policy(DebouncePolicy(self))

    def _prepare(self, settings: dict[str, Any], job_state: JobState | None) -> dict[str, Any]:
        if settings["seconds"] < 0:
            raise StdConfigError(
                f"{self.who(job_state)}: config key 'seconds' must be >= 0, "
                f"got {settings['seconds']}"
            )
        return settings

    def logic(self, slot_data: SlotData, policy_message: Any, job_state: JobState) -> None:
        settings = self.settings(job_state)
        records = [record for chunk, _ in incoming(slot_data, "in") for record in chunk]
        if not records:
            return
        if settings["keep"] == "last":
            send(self, "out", records[-1:], as_chunk=False)
        else:
            send(self, "out", records, as_chunk=True)
        self.emit("burst", count=len(records))


class RateLimit(StdRoutine):
    """Pass records on at most ``per_second`` activations per second within each job.

    Each activation forwards one queued item (a record or a chunk); the others wait on a
    timer. Jobs are limited separately.
    """

    registered_name = "std.rate_limit"
    config_schema = {
        "per_second": {
            "type": "number",
            "default": 10.0,
            "description": "maximum activations per second per job (> 0)",
        },
    }

    def __init__(self) -> None:
        super().__init__()
        self.add_slot("in", max_queue_length=100_000)
        self.add_event("out", optional=RECORD_PARAMS)
        self.set_activation_policy(RateLimitPolicy(self))

    def _prepare(self, settings: dict[str, Any], job_state: JobState | None) -> dict[str, Any]:
        if settings["per_second"] <= 0:
            raise StdConfigError(
                f"{self.who(job_state)}: config key 'per_second' must be > 0, "
                f"got {settings['per_second']}"
            )
        return settings

    def logic(self, slot_data: SlotData, policy_message: Any, job_state: JobState) -> None:
        self.settings(job_state)
        for records, as_chunk in incoming(slot_data, "in"):
            send(self, "out", records, as_chunk)
