"""The remote protocol, worker side: run one activation against a snapshot, record its effects.

:func:`run_remote_activation` is what a remote executor runs: logic gets a
:class:`JobStateView` (reads see the snapshot, writes are recorded) and a context whose
``emit`` records; the result is the list of recorded operations plus the error, if any, as an
always-picklable :class:`RoutineError`. The driver side, which builds the payload and
replays the operations into the real job, is the engine's (``engine/remote_runs.py``).

The snapshot holds the routine states, ``shared_data`` and ``shared_log`` of the job, so each
remote activation costs a copy and a pickle of them: keep large data out of the job state.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from inspect import isawaitable
from typing import TYPE_CHECKING, Any, cast

from routilux_kernel.core.context import current_activation
from routilux_kernel.core.errors import ExecutorError, RoutiluxError, RoutineError
from routilux_kernel.core.job_state import ExecutionStatus, check_state_update
from routilux_kernel.core.lazy_logger import loguru_context
from routilux_kernel.executors.pickling import dumps, loads, pickling_problems

if TYPE_CHECKING:
    import pluggy

    from routilux_kernel.core.routine import Routine

__all__ = [
    "JobSnapshot",
    "JobStateView",
    "RemoteWorker",
    "WorkerCrashedError",
    "describe_exit",
    "dumps",
    "loads",
    "pickling_problems",
    "preload_worker_plugins",
    "use_driver_entry_points",
    "worker_entry_points",
    "run_remote_activation",
    "set_cancel_probe",
    "set_effect_stream",
    "setup_worker",
]


class WorkerCrashedError(ExecutorError):
    """A worker process died while it ran an activation; only that activation fails."""

    def __init__(self, message: str, pid: int | None = None, exitcode: int | None = None):
        super().__init__(message)
        self.pid = pid
        self.exitcode = exitcode

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.pid, self.exitcode))


def describe_exit(exitcode: int | None) -> str:
    """``exited with code 1`` or ``exited with code -11 (SIGSEGV)``."""
    if exitcode is None:
        return "disappeared"
    if exitcode < 0:
        try:
            return f"exited with code {exitcode} ({signal.Signals(-exitcode).name})"
        except ValueError:
            pass
    return f"exited with code {exitcode}"


# -- the worker side ---------------------------------------------------------------------


@dataclass
class RemoteWorker:
    """What the ``worker_setup`` hook receives about the worker it runs in."""

    executor: str
    name: str
    pid: int = field(default_factory=os.getpid)
    #: The backend's own worker object (a ``distributed.Worker`` for dask), if any.
    backend: Any = None


_worker: RemoteWorker | None = None
_run_activation_hook: Any = None
#: A plugin manager built before this process was forked into a worker, and its plugins.
_preloaded: tuple[tuple[str, ...], Any] | None = None
_cancel_probe: Callable[[], bool] | None = None
#: Sends the effects recorded so far to the driver and returns what applying them raised.
_effect_stream: Callable[[bytes], BaseException | None] | None = None


def setup_worker(
    executor: str, name: str, backend: Any = None, plugins: Iterable[str] = ()
) -> RemoteWorker:
    """Load the routilux plugins in this worker process and call ``worker_setup`` once.

    ``plugins`` are module names registered besides the installed ones. A later call in
    the same process returns the first worker description without running setup again.
    """
    global _worker, _run_activation_hook
    if _worker is not None:
        return _worker
    from routilux_kernel.hooks.calls import HookSet

    plugins = tuple(plugins)
    if _preloaded is not None and _preloaded[0] == plugins:
        pm: pluggy.PluginManager = _preloaded[1]
    else:
        pm = _plugin_manager(plugins)
    worker = RemoteWorker(executor, name, backend=backend)
    pm.hook.worker_setup(worker=worker)
    _run_activation_hook = HookSet(pm).run_activation
    _worker = worker
    return worker


def preload_worker_plugins(
    plugins: Iterable[str] = (), entry_points: DriverEntryPoints = None
) -> None:
    """Import the plugins and build the plugin manager now, in a process that will be forked
    into workers (the ``process`` executor's template); ``setup_worker`` then reuses it.

    ``entry_points``: see :func:`use_driver_entry_points`."""
    global _preloaded
    plugins = tuple(plugins)
    use_driver_entry_points(entry_points)
    _preloaded = (plugins, _plugin_manager(plugins))


#: Entry points as plain tuples (name, target, distribution, version), or None.
DriverEntryPoints = tuple[tuple[str | None, ...], ...] | None


def use_driver_entry_points(entry_points: DriverEntryPoints) -> None:
    """Load the installed plugins from what :func:`worker_entry_points` returned in the driver
    instead of reading the installed metadata again (None: read it, as a driver does)."""
    if entry_points is not None:
        from routilux_kernel.hooks.manager import PluginSource, use_entry_points

        use_entry_points(PluginSource(*fields) for fields in entry_points)  # type: ignore[arg-type]


def worker_entry_points() -> DriverEntryPoints:
    """The installed plugins' entry points as this process found them, as plain tuples for
    a worker's set-up message (None: this process has not looked them up)."""
    from routilux_kernel.hooks.manager import found_entry_points

    found = found_entry_points()
    if found is None:
        return None
    return tuple(
        (source.entry_point, source.target, source.distribution, source.version) for source in found
    )


def _plugin_manager(plugins: tuple[str, ...]) -> pluggy.PluginManager:
    from routilux_kernel.hooks.manager import create_plugin_manager

    modules = [importlib.import_module(module_name) for module_name in plugins]
    return create_plugin_manager(plugins=modules)


def set_effect_stream(stream: Callable[[bytes], BaseException | None] | None) -> None:
    """Stream remote logic's effects while it runs: at each ``emit``, the writes and emits
    recorded so far are pickled and passed to ``stream``, which hands them to the driver,
    waits until they were applied there (a full slot may hold it) and returns the error
    that applying them raised, if any; ``emit`` raises it in the logic. None: effects are
    returned with the outcome only."""
    global _effect_stream
    _effect_stream = stream


def set_cancel_probe(probe: Callable[[], bool] | None) -> None:
    """Let remote logic see a cancel that happens while it runs (``job_state.cancel_requested``)."""
    global _cancel_probe
    _cancel_probe = probe


class _RecordingDict(dict[str, Any]):
    """``shared_data`` in a worker: a copy of the driver's, whose writes are recorded."""

    def __init__(self, data: dict[str, Any], ops: list[tuple[Any, ...]]) -> None:
        super().__init__(data)
        self._ops = ops

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self._ops.append(("set", key, value))

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._ops.append(("delete", key))

    def update(self, *args: Any, **kwargs: Any) -> None:
        changes = dict(*args, **kwargs)
        super().update(changes)
        self._ops.append(("update", changes))

    def __ior__(self, other: Any) -> _RecordingDict:  # type: ignore[override,misc]
        self.update(other)
        return self

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def pop(self, key: str, *default: Any) -> Any:
        if key in self:
            value = super().pop(key)
            self._ops.append(("delete", key))
            return value
        return super().pop(key, *default)

    def popitem(self) -> tuple[str, Any]:
        key, value = super().popitem()
        self._ops.append(("delete", key))
        return key, value

    def clear(self) -> None:
        super().clear()
        self._ops.append(("clear",))

    def __reduce__(self) -> tuple[Any, ...]:
        # Emitted or stored by logic, it travels as a plain dict: unpickling a recording
        # one would replay its items through __setitem__ before it has its ops list.
        return (dict, (dict(self),))


class _RecordingList(list[Any]):
    """``shared_log`` in a worker: append-only, because appends are replayed on the driver."""

    def __init__(self, items: list[Any], ops: list[tuple[Any, ...]]) -> None:
        super().__init__(items)
        self._ops = ops

    def append(self, item: Any) -> None:
        super().append(item)
        self._ops.append(("append", item))

    def extend(self, items: Iterable[Any]) -> None:
        items = list(items)
        super().extend(items)
        self._ops.append(("extend", items))

    def __iadd__(self, items: Iterable[Any]) -> _RecordingList:  # type: ignore[misc]
        self.extend(items)
        return self

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            "job_state.shared_log in a remote activation supports append and extend only: "
            "the driver replays them on the job's log, which other routines may have grown"
        )

    insert = pop = remove = clear = sort = reverse = _refuse
    __setitem__ = __delitem__ = __imul__ = _refuse

    def __reduce__(self) -> tuple[Any, ...]:
        return (list, (list(self),))  # as a plain list, like _RecordingDict


@dataclass
class JobSnapshot:
    """What remote logic may read of its job, copied when the activation is sent."""

    job_id: str
    flow_id: str
    routine_states: dict[str, dict[str, Any]]
    shared_data: dict[str, Any]
    shared_log: list[Any]
    cancel_requested: bool


class JobStateView:
    """The JobState that remote logic receives: reads see a snapshot, writes are recorded.

    The driver applies the recorded writes to the real JobState, in order, when the
    activation returns. Mutating a value in place (``shared_data["k"].append(x)``) is not a
    write and is not seen by the driver.
    """

    def __init__(self, snapshot: JobSnapshot, ops: list[tuple[Any, ...]]) -> None:
        self.job_id = snapshot.job_id
        self.flow_id = snapshot.flow_id
        self.status = ExecutionStatus.RUNNING
        self.shared_data: dict[str, Any] = _RecordingDict(snapshot.shared_data, ops)
        self.shared_log: list[Any] = _RecordingList(snapshot.shared_log, ops)
        self._states = snapshot.routine_states
        self._cancelled = snapshot.cancel_requested
        self._ops = ops

    @property
    def current_routine_id(self) -> str | None:
        ctx = current_activation.get()
        return ctx.routine_id if ctx is not None and ctx.job_state is self else None

    def get_routine_state(self, routine_id: str, default: Any = None) -> Any:
        state = self._states.get(routine_id)
        return dict(state) if state is not None else default

    def update_routine_state(self, routine_id: str, updates: dict[str, Any]) -> None:
        check_state_update(routine_id, updates)
        self._states.setdefault(routine_id, {}).update(updates)
        self._ops.append(("state", routine_id, dict(updates)))

    @property
    def routine_states(self) -> dict[str, dict[str, Any]]:
        return {key: dict(value) for key, value in self._states.items()}

    @property
    def cancel_requested(self) -> bool:
        """True if the job was cancelled before this activation started, or (where the
        executor can tell a running worker) while it runs."""
        if self._cancelled:
            return True
        probe = _cancel_probe
        return probe is not None and probe()

    def record(self, routine_id: str, kind: str, detail: Any = None) -> None:
        self._ops.append(("record", routine_id, kind, detail))

    # The original routilux's accessors, recorded like the writes they stand for.
    def update_shared_data(self, key: str, value: Any) -> None:
        self.shared_data[key] = value

    def get_shared_data(self, key: str, default: Any = None) -> Any:
        return self.shared_data.get(key, default)

    def append_to_shared_log(self, entry: Any) -> None:
        self.shared_log.append(entry)

    def get_shared_log(self) -> list[Any]:
        return list(self.shared_log)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(
            f"job_state.{name} is not available to logic on a remote executor; it sees job_id, "
            "flow_id, status, current_routine_id, get_routine_state, update_routine_state, "
            "routine_states, shared_data, shared_log (and their get_/update_/append_to_ "
            "helpers), cancel_requested and record"
        )

    def __setattr__(self, name: str, value: Any) -> None:
        # ``shared_log += [...]`` rebinds the same object; anything else would be lost
        # silently, since only recorded writes reach the driver.
        if name in self.__dict__ and self.__dict__[name] is not value:
            raise AttributeError(
                f"job_state.{name} cannot be replaced in a remote activation: only recorded "
                "writes reach the driver (change shared_data's keys, append to shared_log, "
                "call update_routine_state)"
            )
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        return f"<JobStateView {self.job_id} flow={self.flow_id!r} (remote snapshot)>"


class _RemoteContext:
    """The activation context in a worker: emits are recorded, not routed."""

    __slots__ = ("job_state", "routine_id", "routine", "ops")

    def __init__(self, view: JobStateView, routine_id: str, routine: Routine, ops: list) -> None:
        self.job_state = view
        self.routine_id = routine_id
        self.routine = routine
        self.ops = ops

    def emit(self, routine: Routine, event: str, data: dict[str, Any]) -> None:
        if routine is not self.routine:
            raise RoutiluxError(
                f"routine {self.routine_id!r} runs remotely and called emit({event!r}) on "
                f"another routine ({type(routine).__name__}); remote logic can emit only its "
                "own routine's events"
            )
        self.ops.append(("emit", event, data))
        stream = _effect_stream
        if stream is None:
            return
        try:
            batch = dumps(self.ops)
        except Exception as exc:
            self.ops.pop()
            raise RoutiluxError(
                f"routine {self.routine_id!r} made an emit({event!r}) (or a job state write "
                f"before it) whose data cannot be pickled to send to the driver: {exc}"
            ) from exc
        self.ops.clear()  # in place: the view's recording containers share this list
        error = stream(batch)
        if error is not None:
            raise error


class _RemoteActivation:
    """What a worker-side ``run_activation`` hook sees (no driver-side ``job``)."""

    def __init__(
        self, routine_id: str, routine: Routine, slot_data: Any, message: Any, view, ticket
    ):
        self.routine_id = routine_id
        self.routine = routine
        self.slot_data = slot_data
        self.policy_message = message
        self.job_state = view
        self.job = None
        #: The driver's activation id, attempt and merged remote_activation_context dicts.
        self.activation_id, self.attempt, self.context = ticket

    def call_logic(self) -> Any:
        return self.routine.get_logic()(self.slot_data, self.policy_message, self.job_state)


#: Routines unpickled in this worker, by their pickled bytes: the driver pickles a routine
#: once per plan, so the same bytes come again for every activation of it.
_routines: dict[bytes, Any] = {}
_routines_lock = threading.Lock()  # a Dask worker runs tasks on several threads
_ROUTINES_KEPT = 64


def _routine_from(pickled: bytes) -> Any:
    routine = _routines.get(pickled)
    if routine is None:
        routine = loads(pickled)
        with _routines_lock:
            if len(_routines) >= _ROUTINES_KEPT:
                _routines.pop(next(iter(_routines)))  # the oldest
            _routines[pickled] = routine
    return routine


def run_remote_activation(routine_id: str, payload: bytes) -> bytes:
    """Worker entry point: run one activation and return its pickled outcome (never raises)."""
    ops: list[tuple[Any, ...]] = []
    try:
        pickled_routine, slot_data, message, snapshot_fields, ticket = loads(payload)
        snapshot = JobSnapshot(*snapshot_fields)
        routine = _routine_from(pickled_routine)
    except BaseException as exc:  # noqa: BLE001 - reported to the driver
        failed = RoutineError.from_exception(exc)
        message = f"routine {routine_id!r} could not be unpickled in the worker: {exc}"
        return _dump_outcome(
            routine_id, ops, RoutineError(failed.error_type, message, failed.remote_traceback)
        )
    view = JobStateView(snapshot, ops)
    # A view stands in for the JobState: remote logic reads and writes through it.
    token = current_activation.set(cast(Any, _RemoteContext(view, routine_id, routine, ops)))
    error: RoutineError | None = None
    # job_id/routine_id on every loguru record the logic makes, as on the driver; a worker
    # that never logs never imports loguru (50 ms per worker).
    log_context = loguru_context()
    log_token = (
        log_context.set({**log_context.get(), "job_id": snapshot.job_id, "routine_id": routine_id})
        if log_context is not None
        else None
    )
    try:
        hook = _run_activation_hook
        if hook is not None:
            result = hook(
                activation=_RemoteActivation(routine_id, routine, slot_data, message, view, ticket)
            )
        else:
            result = routine.get_logic()(slot_data, message, view)
        if result is not None and isawaitable(result):
            _await_in_worker(result)
    except BaseException as exc:  # noqa: BLE001 - SystemExit in logic fails the activation only
        error = RoutineError.from_exception(exc)
    finally:
        if log_token is not None:
            log_context.reset(log_token)  # type: ignore[union-attr]
        current_activation.reset(token)
        _flush_output()
    return _dump_outcome(routine_id, ops, error)


def _await_in_worker(awaitable: Any) -> None:
    """Async logic on a remote worker: run it to the end on an event loop of its own."""
    import asyncio

    async def until_done() -> None:
        await awaitable

    asyncio.run(until_done())


def _dump_outcome(routine_id: str, ops: list[tuple[Any, ...]], error: RoutineError | None) -> bytes:
    try:
        return dumps((ops, error))
    except Exception as exc:
        for index, op in enumerate(ops):  # keep the effects made before the culprit
            try:
                dumps(op)
            except Exception:
                what = f"emit({op[1]!r})" if op[0] == "emit" else f"job state write {op[0]!r}"
                culprit = RoutineError(
                    type(exc).__name__,
                    f"routine {routine_id!r} made a {what} whose data cannot be pickled to "
                    f"send back to the driver: {exc}",
                )
                return dumps((ops[:index], culprit))
        return dumps(([], RoutineError(type(exc).__name__, f"{routine_id!r}: {exc}")))


def _flush_output() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
