"""Activation policies: when a routine runs, and with which of the data waiting in its slots.

A policy is a callable ``policy(slots, job_state) -> (activate, data_slice, policy_message)``.
``slots`` is the :class:`SlotQueues` of one routine in one job; the policy takes the data it
wants out of it (``take``/``take_all``/``take_each``) and returns it as ``data_slice``, which
becomes the logic's ``slot_data``. Whatever it leaves stays queued for a later decision.
The kernel asks again whenever data lands in a slot of the routine and whenever an
activation of it finishes, and never runs two activations of one routine in one job at once.

Policy objects are shared by every job; per-job memory goes in ``slots.state``.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from routilux_kernel.core.error_handling import MAX_WAIT_SECONDS
from routilux_kernel.core.markers import hookimpl

Decision = tuple[bool, dict[str, list[dict[str, Any]]] | None, Any]


def _not_now() -> Decision:
    """A non-activation, with an empty data slice as the original routilux returned."""
    return False, {}, None


class SlotView:
    """One slot's queue as the original routilux's policies saw it (``slots["input"]``)."""

    __slots__ = ("name", "_owner")

    def __init__(self, owner: SlotQueues, name: str) -> None:
        self._owner = owner
        self.name = name

    def get_unconsumed_count(self) -> int:
        return self._owner.count(self.name)

    def consume_all_new(self) -> list[dict[str, Any]]:
        return self._owner.take(self.name)

    def consume_one_new(self) -> dict[str, Any] | None:
        taken = self._owner.take(self.name, 1)
        return taken[0] if taken else None

    def peek(self) -> list[dict[str, Any]]:
        return self._owner.peek(self.name)


class SlotQueues:
    """The queued data of one routine in one job, as its activation policy sees it."""

    __slots__ = ("_queues", "state", "_names", "requested_wake", "concurrency")

    def __init__(self, names: tuple[str, ...], concurrency: int = 1) -> None:
        self._names = names
        #: How many activations of the routine may run at once in the job; a policy may
        #: split the queued data among them (the immediate policy does).
        self.concurrency = concurrency
        self._queues: dict[str, deque[dict[str, Any]]] = {name: deque() for name in names}
        #: Per-job scratch space for the policy (e.g. the time of the last activation).
        self.state: dict[str, Any] = {}
        #: The last delay passed to :meth:`wake_after` (useful when testing a policy alone).
        self.requested_wake: float | None = None

    @property
    def slot_names(self) -> tuple[str, ...]:
        return self._names

    # A routilux policy treats ``slots`` as a dict of slot objects.
    def __getitem__(self, slot: str) -> SlotView:
        if slot not in self._queues:
            raise KeyError(
                f"no slot {slot!r}; this routine's slots: {', '.join(self._names) or 'none'}"
            )
        return SlotView(self, slot)

    def __contains__(self, slot: object) -> bool:
        return slot in self._queues

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def keys(self) -> tuple[str, ...]:
        return self._names

    def values(self) -> list[SlotView]:
        return [SlotView(self, name) for name in self._names]

    def items(self) -> list[tuple[str, SlotView]]:
        return [(name, SlotView(self, name)) for name in self._names]

    def count(self, slot: str) -> int:
        return len(self._queues[slot])

    def counts(self) -> dict[str, int]:
        return {name: len(queue) for name, queue in self._queues.items()}

    def any_ready(self) -> bool:
        """True if any slot holds data."""
        for queue in self._queues.values():
            if queue:
                return True
        return False

    def all_ready(self, n: int = 1) -> bool:
        """True if every slot holds at least ``n`` items."""
        for queue in self._queues.values():
            if len(queue) < n:
                return False
        return True

    def peek(self, slot: str) -> list[dict[str, Any]]:
        """The items queued in ``slot``, oldest first, without taking them."""
        return list(self._queues[slot])

    def take(self, slot: str, n: int | None = None) -> list[dict[str, Any]]:
        """Remove and return up to ``n`` items (all if None) from ``slot``, oldest first."""
        queue = self._queues[slot]
        if n is None or n >= len(queue):
            items = list(queue)
            queue.clear()
            return items
        return [queue.popleft() for _ in range(n)]

    def take_all(self) -> dict[str, list[dict[str, Any]]]:
        """Remove and return everything, keyed by every slot name."""
        data = {}
        for name, queue in self._queues.items():
            data[name] = list(queue)
            queue.clear()
        return data

    def take_each(self, n: int) -> dict[str, list[dict[str, Any]]]:
        """Remove and return ``n`` items from every slot (call only when :meth:`all_ready`)."""
        return {name: self.take(name, n) for name in self._names}

    def wake_after(self, seconds: float) -> None:
        """Ask the kernel to call the policy again after ``seconds`` (timer-based policies).

        The job does not complete while a wake-up is pending, so queued data is never stranded.
        """
        self.requested_wake = seconds
        self._on_wake_request(seconds)

    def _on_wake_request(self, seconds: float) -> None:
        """Overridden by the scheduler's per-job subclass; a bare SlotQueues only records it."""

    def _append(self, slot: str, item: dict[str, Any]) -> None:
        self._queues[slot].append(item)

    def _length(self, slot: str) -> int:
        return len(self._queues[slot])

    def _drain(self) -> dict[str, list[dict[str, Any]]]:
        """Remove and return the non-empty queues (for the job's unconsumed record)."""
        left = {}
        for name, queue in self._queues.items():
            if queue:
                left[name] = list(queue)
                queue.clear()
        return left


class ActivationPolicy:
    """Base for the built-in policies: a name, options for flow files, and ``__call__``."""

    name = "policy"

    def options(self) -> dict[str, Any]:
        return {}

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.options()}

    def __call__(self, slots: SlotQueues, job_state: Any) -> Decision:
        raise NotImplementedError

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}({opts})"


class ImmediatePolicy(ActivationPolicy):
    """Run as soon as any slot has data, with everything queued."""

    name = "immediate"

    def __call__(self, slots: SlotQueues, job_state: Any) -> Decision:
        if not slots.any_ready():
            return _not_now()
        if slots.concurrency == 1:
            return True, slots.take_all(), None
        # Concurrent activations share what is queued: each takes its part, so one
        # activation does not take everything while the others find nothing.
        share = {name: -(-slots.count(name) // slots.concurrency) for name in slots.slot_names}
        return True, {name: slots.take(name, n) for name, n in share.items()}, None


class AllSlotsReadyPolicy(ActivationPolicy):
    """Run when every slot holds an item, with the oldest item of each (a join)."""

    name = "all_slots_ready"

    def __call__(self, slots: SlotQueues, job_state: Any) -> Decision:
        if slots.all_ready(1):
            return True, slots.take_each(1), None
        return _not_now()


class BatchSizePolicy(ActivationPolicy):
    """Run when every slot holds ``size`` items, with ``size`` items of each.

    With ``flush_at_end=True`` the remainder is delivered as a last, shorter batch when the
    job has nothing else to do; otherwise it is recorded in ``JobState.unconsumed``.
    """

    name = "batch_size"

    def __init__(self, size: int, flush_at_end: bool = False) -> None:
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"batch_size needs an int >= 1, got {size!r}")
        self.size = size
        self.flush_at_end = flush_at_end

    def options(self) -> dict[str, Any]:
        return {"size": self.size, "flush_at_end": self.flush_at_end}

    def __call__(self, slots: SlotQueues, job_state: Any) -> Decision:
        if slots.all_ready(self.size):
            return True, slots.take_each(self.size), {"batch_size": self.size}
        return _not_now()

    def on_idle(self, slots: SlotQueues, job_state: Any) -> Decision:
        """Called when the job would otherwise complete with data left in this routine."""
        if self.flush_at_end and slots.any_ready():
            return True, slots.take_all(), {"batch_size": self.size, "final": True}
        return _not_now()


class TimeIntervalPolicy(ActivationPolicy):
    """Run at most once every ``seconds``, with everything queued.

    Data that arrives too soon waits on a timer, never a sleeping thread; the job stays
    open until it is delivered.
    """

    name = "time_interval"

    def __init__(self, seconds: float) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise TypeError(
                f"time_interval needs seconds as a number, got {type(seconds).__name__} {seconds!r}"
            )
        # inf would hold queued data for ever and NaN would never compare: both are refused,
        # and so is a wait beyond a day, as in flow files
        if not (math.isfinite(seconds) and 0 <= seconds <= MAX_WAIT_SECONDS):
            raise ValueError(
                f"time_interval needs seconds from 0 to {MAX_WAIT_SECONDS} (one day), "
                f"got {seconds!r}"
            )
        self.seconds = float(seconds)

    def options(self) -> dict[str, Any]:
        return {"seconds": self.seconds}

    def __call__(self, slots: SlotQueues, job_state: Any) -> Decision:
        if not slots.any_ready():
            return _not_now()
        now = time.monotonic()
        last = slots.state.get("last_activation")
        if last is None or now - last >= self.seconds:
            slots.state["last_activation"] = now
            return True, slots.take_all(), None
        slots.wake_after(self.seconds - (now - last))
        return _not_now()


class CustomPolicy(ActivationPolicy):
    """Wrap a user function ``fn(slots, job_state)``.

    ``fn`` returns either ``(activate, data_slice, message)``, or a bool, as the original
    routilux's check functions do: True runs the routine with everything queued.
    """

    name = "custom"

    def __init__(self, fn: Callable[[SlotQueues, Any], Decision | bool]) -> None:
        if not callable(fn):
            raise TypeError(f"custom policy takes a callable, got {type(fn).__name__}")
        self.fn = fn

    def __call__(self, slots: SlotQueues, job_state: Any) -> Decision:
        answer = self.fn(slots, job_state)
        if answer is True:
            return True, slots.take_all(), {"reason": "custom_policy_met"}
        if answer is False:
            return _not_now()
        # Anything else must be the decision tuple; the engine reports one that is not.
        return answer

    def __repr__(self) -> str:
        return f"CustomPolicy({getattr(self.fn, '__qualname__', self.fn)!r})"


def immediate() -> ImmediatePolicy:
    """Run as soon as data arrives."""
    return ImmediatePolicy()


def all_slots_ready() -> AllSlotsReadyPolicy:
    """Run when every slot has data; one item from each."""
    return AllSlotsReadyPolicy()


def batch_size(
    size: int | None = None, flush_at_end: bool = False, *, min_batch_size: int | None = None
) -> BatchSizePolicy:
    """Run with ``size`` items per slot at a time (``min_batch_size``: routilux's name)."""
    return BatchSizePolicy(
        _one_of("batch_size", "size", size, "min_batch_size", min_batch_size), flush_at_end
    )


def time_interval(
    seconds: float | None = None, *, min_interval_seconds: float | None = None
) -> TimeIntervalPolicy:
    """Run at most once every ``seconds`` (``min_interval_seconds``: routilux's name)."""
    return TimeIntervalPolicy(
        _one_of("time_interval", "seconds", seconds, "min_interval_seconds", min_interval_seconds)
    )


def _one_of(policy: str, name: str, value: Any, alias: str, alias_value: Any) -> Any:
    """The value given under our name or the original routilux's, refusing both or neither."""
    if value is not None and alias_value is not None:
        raise TypeError(f"{policy} takes {name} or {alias}, not both")
    if value is None and alias_value is None:
        raise TypeError(f"{policy} needs {name} (or {alias}, the original routilux's name)")
    return value if value is not None else alias_value


def custom(fn: Callable[[SlotQueues, Any], Decision | bool]) -> CustomPolicy:
    """Run when ``fn`` says so."""
    return CustomPolicy(fn)


# The names the original routilux uses, so tutorial code runs unchanged.
immediate_policy = immediate
all_slots_ready_policy = all_slots_ready
batch_size_policy = batch_size
time_interval_policy = time_interval
custom_policy = custom

#: The single default instance (policies hold no per-job state).
DEFAULT_POLICY = ImmediatePolicy()


@hookimpl
def register_activation_policies(register: Callable[..., None]) -> None:
    """The built-in policies, by the names flow files and plugins use."""
    register("immediate", immediate)
    register("all_slots_ready", all_slots_ready)
    register("batch_size", batch_size)
    register("time_interval", time_interval)
    register("custom", custom)


__all__ = [
    "ActivationPolicy",
    "AllSlotsReadyPolicy",
    "BatchSizePolicy",
    "CustomPolicy",
    "Decision",
    "ImmediatePolicy",
    "SlotQueues",
    "SlotView",
    "TimeIntervalPolicy",
    "all_slots_ready",
    "all_slots_ready_policy",
    "batch_size",
    "batch_size_policy",
    "custom",
    "custom_policy",
    "immediate",
    "immediate_policy",
    "time_interval",
    "time_interval_policy",
]
