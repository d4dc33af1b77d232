"""The activation policy this plugin contributes, created by name as ``sample.every_n``."""

from __future__ import annotations

from typing import Any

from routilux_kernel.activation_policies import Decision, SlotQueues


class EveryN:
    """Run with ``n`` items of one slot at a time; the rest goes in a last, shorter batch.

    The policy object is shared by every job, so it keeps no per-job data itself.
    """

    def __init__(self, n: int = 2) -> None:
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"sample.every_n: n must be an int >= 1, got {n!r}")
        self.n = n

    def __call__(self, slots: SlotQueues, job_state: Any) -> Decision:
        for name in slots.slot_names:
            if slots.count(name) >= self.n:
                return True, {name: slots.take(name, self.n)}, {"batch": self.n}
        return False, None, None

    def on_idle(self, slots: SlotQueues, job_state: Any) -> Decision:
        """Called when the job has nothing else to do: deliver what is left."""
        if slots.any_ready():
            return True, slots.take_all(), {"batch": "rest"}
        return False, None, None

    def __repr__(self) -> str:
        return f"EveryN(n={self.n})"


def every_n(n: int = 2) -> EveryN:
    """The factory registered as ``sample.every_n``: ``every_n(n=2)``."""
    return EveryN(n)
