"""Queues and policy decisions: data lands in slots, the policy decides, activations are made.

A part of :class:`~routilux_kernel.engine.job_run.JobRun`, which combines the parts; every
method runs on a JobRun and follows its locking rules (see ``job_run.py``).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from routilux_kernel.core.errors import (
    ActivationPolicyError,
    SlotFullError,
)
from routilux_kernel.core.job_state import ExecutionStatus
from routilux_kernel.core.policies import DEFAULT_POLICY
from routilux_kernel.engine.activation import Activation, RoutineRun
from routilux_kernel.engine.job_base import JobBase
from routilux_kernel.engine.timers import TimerHandle


class PolicyDecisions(JobBase):
    """Queues and policy decisions of one job."""

    def _decide(self, run: RoutineRun) -> Activation | None:
        """Ask the routine's policy whether to run now (caller holds the lock)."""
        if run.active >= run.concurrency or run.skipped or self.closed:
            return None
        policy = run.spec.routine._activation_policy or DEFAULT_POLICY
        try:
            activate, data, message = self._ask(policy, run)
        except Exception as exc:
            self._policy_failed(run, policy, exc)
            return None
        if not activate:
            return None
        return self._activation_locked(run, data, message, policy)

    def _ask(self, policy: Any, run: RoutineRun) -> Any:
        self._policy_thread = threading.get_ident()
        try:
            return policy(run, self.job_state)
        finally:
            self._policy_thread = None

    def _activation_locked(
        self, run: RoutineRun, data: Any, message: Any, policy: Any
    ) -> Activation | None:
        if not isinstance(data, dict):
            self._policy_failed(
                run, policy, TypeError(f"data_slice must be a dict, got {type(data).__name__}")
            )
            return None
        run.active += 1
        self.in_flight += 1
        activation = Activation(self, run, data, message)
        if self._checkpoints is not None:
            activation.checkpoint = self._checkpoints.activation_made(run)
        self._active.add(activation)
        if self._blocked and self._room is not None:
            self._room.notify_all()
        return activation

    def _policy_failed(self, run: RoutineRun, policy: Any, exc: Exception) -> None:
        error = ActivationPolicyError(
            f"activation policy {policy!r} of routine {run.spec.routine_id!r} in job "
            f"{self.job_state.job_id} failed: {type(exc).__name__}: {exc}; a policy returns "
            "(activate, data_slice, policy_message)"
        )
        error.__cause__ = exc
        self._close_locked(ExecutionStatus.FAILED, error, run.spec.routine_id)

    def route_emit(self, routine_id: str, event: str, data: dict[str, Any]) -> None:
        """Put ``data`` in every slot connected to ``routine_id``'s ``event``."""
        state = self.job_state
        if self.hooks.event_emitted is not None:
            self.hooks.notify(
                self.hooks.event_emitted,
                job_state=state,
                routine_id=routine_id,
                event=event,
                data=data,
            )
        targets = self.plan.routes.get((routine_id, event))
        if not targets:
            return
        checkpoints = self._checkpoints
        # Encoded before anything is delivered: data the store cannot keep refuses the emit.
        text = ""
        if checkpoints is not None:
            try:
                text = checkpoints.codec.quick(data)
            except Exception:  # encode_emit names the routine and event (or encodes after all)
                text = checkpoints.encode_emit(routine_id, event, data)
        ready = []
        with self.lock:
            if self.closed:  # logic that outlived its job: keep the data, route nothing
                state.record(routine_id, "emit_after_end", event)
                for target_id, slot in targets:
                    state.unconsumed.setdefault(target_id, {}).setdefault(slot, []).append(data)
                return
            for target_id, slot in targets:
                run = self._run_of(target_id)
                if run._length(slot) >= run.spec.slots[slot].max_queue_length:
                    self._wait_for_room(routine_id, event, targets)
                    if self.closed:  # ended while this emit waited for room: keep the data
                        state.record(routine_id, "emit_after_end", event)
                        for target_id, slot in targets:
                            state.unconsumed.setdefault(target_id, {}).setdefault(slot, []).append(
                                data
                            )
                        return
                    break
            for target in targets:
                target_id, slot = target
                run = self.runs[target_id]
                # self.closed: the policy of an earlier target failed and ended the job
                if run.skipped or self.closed:
                    state.unconsumed.setdefault(target_id, {}).setdefault(slot, []).append(data)
                    if checkpoints is not None and not self.closed:  # recovery keeps it too
                        checkpoints.routed(target, text)
                    continue
                run._append(slot, data)
                if checkpoints is not None:
                    checkpoints.routed(target, text)
                if run.active < run.concurrency:
                    activation = self._decide(run)
                    if activation is not None:
                        ready.append(activation)
        for activation in ready:
            self._dispatch(activation)
        if self._needs_finalize:
            self._finalize()

    def _wait_for_room(
        self, source_id: str, event: str, targets: tuple[tuple[str, str], ...]
    ) -> None:
        """Refuse (or block) the whole emit if any target slot is full: all or nothing.

        After any wait every target is checked again, since the lock was released meanwhile.
        """
        full = self._first_full_target(targets)
        while full is not None and not self.closed:
            run, target_id, slot = full
            spec_slot = run.spec.slots[slot]
            if spec_slot.on_full == "block" and self.runtime._event_loop.is_current():
                raise SlotFullError(
                    f"slot {slot!r} of routine {target_id!r} is full "
                    f"({spec_slot.max_queue_length} items) in job {self.job_state.job_id} of "
                    f"flow {self.flow.flow_id!r}; the emit of {source_id!r}.{event} comes from "
                    "async logic, which runs on the runtime's event loop and must not block it, "
                    "so it was refused and nothing was delivered. Raise max_queue_length"
                )
            if spec_slot.on_full == "block":
                if self._room is None:
                    self._room = threading.Condition(self.lock)
                deadline = time.monotonic() + spec_slot.block_timeout
                self._blocked += 1
                try:
                    while run._length(slot) >= spec_slot.max_queue_length and not self.closed:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0 or not self._room.wait(remaining):
                            break
                finally:
                    self._blocked -= 1
                if self.closed or run._length(slot) < spec_slot.max_queue_length:
                    full = self._first_full_target(targets)
                    continue
            raise SlotFullError(
                f"slot {slot!r} of routine {target_id!r} is full ({spec_slot.max_queue_length} "
                f"items) in job {self.job_state.job_id} of flow {self.flow.flow_id!r}; "
                f"the emit of {source_id!r}.{event} was refused and nothing was delivered. "
                "Raise max_queue_length or use on_full='block'"
            )

    def _first_full_target(
        self, targets: tuple[tuple[str, str], ...]
    ) -> tuple[RoutineRun, str, str] | None:
        for target_id, slot in targets:
            run = self._run_of(target_id)
            if not run.skipped and run._length(slot) >= run.spec.slots[slot].max_queue_length:
                return run, target_id, slot
        return None

    def _release_locked(self) -> list[Activation]:
        """Drop one in-flight unit; at zero, give idle policies a last say, else complete."""
        self.in_flight -= 1
        if self.in_flight or self.closed:
            return []
        ready = []
        for run in self.runs.values():
            if run.active >= run.concurrency or run.skipped or not run.any_ready():
                continue
            policy = run.spec.routine._activation_policy or DEFAULT_POLICY
            on_idle = getattr(policy, "on_idle", None)
            if on_idle is None:
                continue
            try:
                activate, data, message = self._ask(on_idle, run)
            except Exception as exc:
                self._policy_failed(run, policy, exc)
                return []
            if activate:
                activation = self._activation_locked(run, data, message, policy)
                if activation is not None:
                    ready.append(activation)
        if not ready and not self.in_flight and not self.closed:  # on_idle may ask for a wake-up
            self._close_locked(ExecutionStatus.COMPLETED)
        return ready

    def _request_wake(self, run: RoutineRun, delay: float) -> None:
        """A policy asked to be called again in ``delay`` seconds (caller holds the lock)."""
        if self.closed:
            return
        if run.wake is not None:
            if run.wake.deadline <= time.monotonic() + delay:
                return
            run.wake.cancel()
            self._timers.discard(run.wake)
        else:
            self.in_flight += 1  # a pending wake-up keeps the job open
        handle = self.runtime._timers.schedule(delay, lambda timer: self._on_wake(run, timer))
        run.wake = handle
        self._timers.add(handle)

    def _on_wake(self, run: RoutineRun, handle: TimerHandle) -> None:
        with self.lock:
            if run.wake is not handle:
                return
            run.wake = None
            self._timers.discard(handle)
            activation = self._decide(run)
            ready = self._release_locked()
        if activation is not None:
            self._dispatch(activation)
        for other in ready:
            self._dispatch(other)
        if self._needs_finalize:
            self._finalize()
