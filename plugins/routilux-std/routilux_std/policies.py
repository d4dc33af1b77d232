"""Activation policies of the std routines that decide *when* they run.

A policy is called under the job's lock with the routine's queued data (``slots``) and keeps
its per-job memory in ``slots.state``. Each reads its routine's settings; when those are
wrong it activates at once with whatever is queued, so the routine's logic raises the clear
config error (naming the routine id, which a policy does not know) through the job's error
strategy instead of the policy failing anonymously.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from routilux_std.errors import StdConfigError

if TYPE_CHECKING:
    from routilux_std.base import StdRoutine

Decision = tuple[bool, Any, Any]
_WAIT: Decision = (False, None, None)
CONFIG_ERROR = {"config_error": True}


class RoutinePolicy:
    """Base: holds the routine whose settings drive the decision."""

    def __init__(self, routine: StdRoutine) -> None:
        self.routine = routine

    def __call__(self, slots: Any, job_state: Any) -> Decision:
        try:
            settings = self.routine.settings()
        except StdConfigError:
            return (True, slots.take_all(), CONFIG_ERROR) if slots.any_ready() else _WAIT
        return self.decide(slots, settings)

    def decide(self, slots: Any, settings: dict[str, Any]) -> Decision:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.routine.registered_name})"


def quiet_since_last_idle(slots: Any, looks: int = 1) -> bool:
    """True when nothing arrived during the last ``looks`` times this job went idle.

    The kernel asks every idle policy of a job at once, so a routine fed by another one's
    end-of-job flush (a batch's last short batch) would run before that flush lands. Seeing
    the job idle again with the same queued counts means no flush is on its way; a routine
    further down such a chain (a join after an aggregate) asks for one more look.
    """
    counts = tuple(slots.counts().items())
    if slots.state.get("idle_counts") == counts:
        slots.state["idle_looks"] += 1
    else:
        slots.state["idle_counts"], slots.state["idle_looks"] = counts, 0
    if slots.state["idle_looks"] >= looks:
        slots.state.pop("idle_counts")
        return True
    slots.wake_after(0)  # keeps the job open for one more look
    return False


class AtEndOfJob(RoutinePolicy):
    """Hold everything until the job has nothing else to do, then deliver it at once.

    ``wait_for_quiet`` waits for a second idle look (see :func:`quiet_since_last_idle`).
    A job can still go idle more than once, so the message says whether this job already
    delivered: writers then append.
    """

    def __init__(self, routine: StdRoutine, wait_for_quiet: bool = False) -> None:
        super().__init__(routine)
        self.wait_for_quiet = wait_for_quiet

    def decide(self, slots: Any, settings: dict[str, Any]) -> Decision:
        return _WAIT

    def on_idle(self, slots: Any, job_state: Any) -> Decision:
        if not slots.any_ready():
            return _WAIT
        if self.wait_for_quiet and not quiet_since_last_idle(slots):
            return _WAIT
        again = slots.state.get("delivered", False)
        slots.state["delivered"] = True
        return True, slots.take_all(), {"append": again}


class SizeOrTime(RoutinePolicy):
    """Deliver ``size`` items, or what waited ``seconds`` since the first of them; the rest
    at the end of the job."""

    def decide(self, slots: Any, settings: dict[str, Any]) -> Decision:
        if not slots.any_ready():
            slots.state.pop("since", None)
            return _WAIT
        size, seconds = settings["size"], settings["seconds"]
        if slots.count("in") >= size:
            return self._deliver(slots, size, "size")
        if seconds is not None:
            now = time.monotonic()
            since = slots.state.setdefault("since", now)
            if now - since >= seconds:
                return self._deliver(slots, None, "time")
            slots.wake_after(seconds - (now - since))
        return _WAIT

    def on_idle(self, slots: Any, job_state: Any) -> Decision:
        if not slots.any_ready():
            return _WAIT
        return self._deliver(slots, None, "end")

    def _deliver(self, slots: Any, count: int | None, reason: str) -> Decision:
        items = slots.take("in", count)
        # the next batch's clock starts with its own first item
        if slots.any_ready():
            slots.state["since"] = time.monotonic()
        else:
            slots.state.pop("since", None)
        return True, {"in": items}, {"reason": reason}


class JoinRounds(RoutinePolicy):
    """One item per input makes a round; ``mode`` says when a round is complete enough.

    ``all``: every input; ``any``: the first; ``n_of_m``: ``n`` inputs. A round still short
    ``timeout`` seconds after its first item, or when the job goes idle, is delivered as it
    is, with the inputs it lacks named in the message.
    """

    def decide(self, slots: Any, settings: dict[str, Any]) -> Decision:
        names = settings["input_names"]
        arrived = [name for name in names if slots.count(name)]
        if not arrived:
            return _WAIT
        needed = {"all": len(names), "any": 1, "n_of_m": settings["n"]}[settings["mode"]]
        if len(arrived) >= needed:
            return self._deliver(slots, names, arrived, timed_out=False)
        timeout = settings["timeout"]
        if timeout is None:
            return _WAIT
        now = time.monotonic()
        deadline = slots.state.setdefault("deadline", now + timeout)
        if now >= deadline:
            return self._deliver(slots, names, arrived, timed_out=True)
        slots.state["wake_pending"] = True
        slots.wake_after(deadline - now)
        return _WAIT

    def on_idle(self, slots: Any, job_state: Any) -> Decision:
        try:
            names = self.routine.settings()["input_names"]
        except StdConfigError:
            return (True, slots.take_all(), CONFIG_ERROR) if slots.any_ready() else _WAIT
        arrived = [name for name in names if slots.count(name)]
        if not arrived or not quiet_since_last_idle(slots, looks=2):
            return _WAIT
        return self._deliver(slots, names, arrived, timed_out=False)

    def _deliver(
        self, slots: Any, names: list[str], arrived: list[str], timed_out: bool
    ) -> Decision:
        data = {name: slots.take(name, 1) for name in arrived}
        slots.state.pop("deadline", None)
        if slots.state.pop("wake_pending", False):
            # A far-off timeout wake-up would keep the job open until it fired; asking for
            # an immediate one replaces it (the kernel keeps only the earliest wake-up).
            slots.wake_after(0)
        missing = [name for name in names if name not in data]
        return True, data, {"missing": missing, "timed_out": timed_out}


class Debounce(RoutinePolicy):
    """Deliver once no new item arrived for ``seconds``, with everything that came."""

    def decide(self, slots: Any, settings: dict[str, Any]) -> Decision:
        count = slots.count("in")
        if not count:
            return _WAIT
        now = time.monotonic()
        if slots.state.get("count") != count:  # something new arrived: restart the quiet time
            slots.state["count"], slots.state["last_arrival"] = count, now
        quiet = now - slots.state["last_arrival"]
        if quiet >= settings["seconds"]:
            slots.state.pop("count", None)
            return True, {"in": slots.take("in")}, None
        slots.wake_after(settings["seconds"] - quiet)
        return _WAIT


class RateLimit(RoutinePolicy):
    """Deliver one item at a time, at most ``per_second`` deliveries per second per job."""

    def decide(self, slots: Any, settings: dict[str, Any]) -> Decision:
        if not slots.count("in"):
            return _WAIT
        interval = 1.0 / settings["per_second"]
        now = time.monotonic()
        last = slots.state.get("last")
        if last is None or now - last >= interval:
            slots.state["last"] = now
            return True, {"in": slots.take("in", 1)}, None
        slots.wake_after(interval - (now - last))
        return _WAIT
