"""Recovery: a stored job rebuilt from its committed activations, and the claim that takes it.

The state of an interrupted job is its entry items plus the committed activations, replayed
in commit order: the items each routed, its routine-state and shared-data writes; the items
that committed activations consumed are gone. What is left in the queues is delivered again
when the job runs on, so exactly the uncommitted activations run again.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from routilux_kernel.core.errors import FlowNotFoundError, RoutiluxError
from routilux_kernel.core.flow import Flow
from routilux_kernel.core.job_state import JobState
from routilux_kernel.core.job_store import JobStore, ProcessIdentity, StoredJob
from routilux_kernel.core.value_codecs import ValueCodec
from routilux_kernel.engine.checkpoints import JobCheckpoints

if TYPE_CHECKING:
    from routilux_kernel.engine.runtime import Runtime

#: Picks the flow of a stored job (default: the flow registry, then the stored definition).
FlowFinder = Callable[[StoredJob], Flow]


@dataclass
class ReplayedJob:
    """A stored job's state as its committed activations left it."""

    routine_states: dict[str, dict[str, Any]] = field(default_factory=dict)
    shared_data: dict[str, Any] = field(default_factory=dict)
    shared_log: list[Any] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    skipped_routines: set[str] = field(default_factory=set)
    pending: list[tuple[int, str, str, Any]] = field(default_factory=list)
    next_item: int = 1
    next_activation: int = 1


def replay(stored: StoredJob, codec: ValueCodec) -> ReplayedJob:
    """Apply the committed activations of ``stored`` to its entry items, in commit order."""
    decode = codec.decode
    result = ReplayedJob()
    items: dict[int, tuple[int, str, str, Any]] = {
        n: (n, r, s, v) for n, r, s, v in stored.entry_items
    }
    consumed: set[int] = set()
    for activation in stored.activations:
        consumed.update(activation["consumed"])
        result.next_activation = max(result.next_activation, activation["number"] + 1)
        if activation["error"]:
            result.errors.append(
                {
                    "routine_id": activation["routine_id"],
                    "error": activation["error"],
                    "traceback": activation["traceback"],
                    "attempt": activation["attempt"],
                    "time": activation["finished_at"],
                }
            )
        for op in activation["effects"]:
            kind = op[0]
            if kind == "item":
                items[op[1]] = (op[1], op[2], op[3], decode(op[4]))
            elif kind == "state":
                result.routine_states.setdefault(op[1], {}).update(decode(op[2]))
            elif kind == "set":
                result.shared_data[op[1]] = decode(op[2])
            elif kind == "delete":
                result.shared_data.pop(op[1], None)
            elif kind == "clear":
                result.shared_data.clear()
            elif kind == "append":
                result.shared_log.append(decode(op[1]))
            elif kind == "skip":
                result.skipped_routines.add(op[1])
            else:
                raise RoutiluxError(
                    f"job {stored.job_id}: activation {activation['number']} holds an unknown "
                    f"operation {kind!r} (written by a newer routilux_kernel?)"
                )
    result.pending = [items[n] for n in sorted(items) if n not in consumed]
    result.next_item = max(items, default=0) + 1
    return result


def rebuild_job(store: JobStore, stored: StoredJob) -> JobCheckpoints:
    """A JobState of ``stored`` ready to run on, with its checkpoint bookkeeping."""
    replayed = replay(stored, store.codec)
    state = JobState(stored.flow_id, job_id=stored.job_id)
    state.created_at = stored.created_at
    for routine_id, values in replayed.routine_states.items():
        state.update_routine_state(routine_id, values)
    state.shared_data = replayed.shared_data
    state.shared_log = replayed.shared_log
    state.errors = replayed.errors
    state.skipped_routines = replayed.skipped_routines
    numbered: dict[tuple[str, str], deque[int]] = {}
    for number, routine_id, slot, value in replayed.pending:
        state.unconsumed.setdefault(routine_id, {}).setdefault(slot, []).append(value)
        numbered.setdefault((routine_id, slot), deque()).append(number)
    return JobCheckpoints(
        store,
        state,
        next_item=replayed.next_item,
        next_activation=replayed.next_activation,
        numbered=numbered,
    )


def default_flow_finder(runtime: Runtime) -> FlowFinder:
    def find(stored: StoredJob) -> Flow:
        flow = runtime.flow_registry.get(stored.flow_id)
        if flow is not None:
            return flow
        if stored.flow_snapshot is None:
            raise FlowNotFoundError(
                f"job {stored.job_id}: flow {stored.flow_id!r} is not registered and its "
                "definition was not stored; register it (FlowRegistry) before recovering"
            )
        import json

        return Flow.from_dict(json.loads(stored.flow_snapshot))

    return find


def claim_jobs(
    store: JobStore,
    owner: ProcessIdentity,
    job_ids: list[str] | None,
    wait_for_leases: bool = True,
) -> list[StoredJob]:
    """Claim the given jobs, or every interrupted one; a live owner's lease is waited out."""
    claimed: list[StoredJob] = []
    if job_ids is not None:
        for job_id in job_ids:
            stored = _claim_one(store, owner, job_id, wait_for_leases)
            if stored is not None:
                claimed.append(stored)
        return claimed
    while True:
        waiting = []
        for job_id, wait in store.interrupted_jobs():
            if wait is None:
                stored = store.claim(job_id, owner)
                if stored is not None:
                    claimed.append(stored)
            else:
                waiting.append(wait)
        if not waiting or not wait_for_leases:
            return claimed
        time.sleep(min(waiting) + 0.05)  # another host's lease must run out before a claim


def _claim_one(
    store: JobStore, owner: ProcessIdentity, job_id: str, wait_for_leases: bool
) -> StoredJob | None:
    while True:
        stored = store.claim(job_id, owner)
        if stored is not None or not wait_for_leases:
            return stored
        wait = dict(store.interrupted_jobs()).get(job_id, False)
        if wait is False or wait is None:
            return store.claim(job_id, owner) if wait is None else None
        time.sleep(wait + 0.05)
