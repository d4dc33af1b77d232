"""Writes to a job's state, attributed to the activation that made them (for checkpoints).

When a job runs on a durable store, the engine sets :data:`current_recorder` around each
activation's logic (and around the replay of a remote activation's operations); the job
state's writes then report to it. Only top-level writes are seen: ``shared_data[k] = v``
is, ``shared_data[k].append(x)`` is not (assign the key again).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Protocol


class EffectRecorder(Protocol):
    """Receives the writes of one activation to one job's state."""

    job_state: Any

    def record(self, kind: str, *args: Any) -> None:
        """Record one write: ``state``, ``set``, ``delete``, ``clear``, ``append`` or ``skip``."""

    def set_item(self, key: Any, value: Any) -> None:
        """``record("set", key, value)``, the most common write, without the dispatch."""


#: The recorder of the activation whose effects are being made in this context, if any.
current_recorder: ContextVar[EffectRecorder | None] = ContextVar(
    "routilux_current_recorder", default=None
)


def recorder_for(job_state: Any) -> EffectRecorder | None:
    recorder = current_recorder.get()
    if recorder is not None and recorder.job_state is job_state:
        return recorder
    return None


def _recorder_of(container: Any, attribute: str) -> EffectRecorder | None:
    """The recorder of the running activation if ``container`` is its job's ``attribute``
    (a wrapper holds no reference to its JobState: that would make every job a cycle
    only the garbage collector frees)."""
    recorder = current_recorder.get()
    if recorder is not None and getattr(recorder.job_state, attribute, None) is container:
        return recorder
    return None


class RecordingSharedData(dict[str, Any]):
    """``JobState.shared_data`` of a job on a durable store: top-level writes are recorded."""

    # Made as RecordingSharedData(a_dict): dict's own __init__ copies, in C (not through
    # the update below)
    __slots__ = ()

    def __setitem__(self, key: str, value: Any) -> None:
        recorder = current_recorder.get()  # _recorder_of, inlined: the most common write
        if recorder is not None and recorder.job_state.shared_data is self:
            recorder.set_item(key, value)
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        recorder = _recorder_of(self, "shared_data")
        if recorder is not None:
            recorder.record("delete", key)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def pop(self, key: str, *default: Any) -> Any:
        if key in self:
            value = self[key]
            del self[key]
            return value
        return super().pop(key, *default)

    def popitem(self) -> tuple[str, Any]:
        key = next(reversed(self))
        return key, self.pop(key)

    def clear(self) -> None:
        super().clear()
        recorder = _recorder_of(self, "shared_data")
        if recorder is not None:
            recorder.record("clear")


class RecordingSharedLog(list[Any]):
    """``JobState.shared_log`` of a job on a durable store: appends are recorded."""

    __slots__ = ()  # made as RecordingSharedLog(a_list), copied by list's own __init__

    def append(self, value: Any) -> None:
        recorder = _recorder_of(self, "shared_log")
        if recorder is not None:
            recorder.record("append", value)
        super().append(value)

    def extend(self, values: Any) -> None:
        for value in list(values):
            self.append(value)

    def __iadd__(self, values: Any) -> RecordingSharedLog:  # type: ignore[misc]
        self.extend(values)
        return self
