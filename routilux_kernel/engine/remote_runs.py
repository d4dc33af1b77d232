"""The remote protocol, driver side: send an activation to a remote executor, replay its effects.

:func:`submit_remote` pickles the routine, its slot data, the policy message and a snapshot
of the job state, and hands the worker-side :func:`run_remote_activation` to the executor.
On an executor that streams (``Executor.submit_streamed``, the ``process`` executor), each
emit sends the writes and emits recorded so far; they are applied and routed at once, under
the target slots' backpressure, while the logic waits. When the future completes, what is
left is applied to the real JobState in the order the logic made it, then the activation
finishes like a local one.

The snapshot holds the routine states, ``shared_data`` and ``shared_log`` of the job, so each
remote activation costs a copy and a pickle of them: keep large data out of the job state.
"""

from __future__ import annotations

import time
from concurrent.futures import CancelledError, Future
from functools import partial
from typing import TYPE_CHECKING, Any

from routilux_kernel.core.effect_recording import current_recorder
from routilux_kernel.core.errors import ExecutorError, RoutiluxError
from routilux_kernel.core.lazy_logger import logger
from routilux_kernel.executors.remote import (
    WorkerCrashedError,
    dumps,
    loads,
    run_remote_activation,
)

if TYPE_CHECKING:
    from routilux_kernel.engine.activation import Activation
    from routilux_kernel.engine.job_run import JobRun
    from routilux_kernel.engine.plan import RoutineSpec


def submit_remote(job: JobRun, activation: Activation) -> Future[Any]:
    """Hand ``activation`` to its (not in-process) executor; its effects apply on completion.

    The ``routine_started`` hook runs here on the driver, when the activation is handed
    over; ``routine_finished`` runs on the driver after its effects were applied.
    """
    spec = activation.run.spec
    with job.lock:
        closed = job.closed
        activation.submitting = not closed
    if closed:  # ended while this activation waited to be dispatched (its data was kept)
        skipped: Future[Any] = Future()
        skipped.set_result(None)
        skipped.add_done_callback(partial(_finish_skipped, job, activation))
        return skipped
    try:
        payload = _payload(job, activation)
        activation.started_at = time.time()  # the hand-over: the worker's clock may differ
        future = spec.executor.submit_streamed(
            run_remote_activation, partial(_on_effects, job, activation), spec.routine_id, payload
        )
    except BaseException:
        with job.lock:
            activation.submitting = False
            if job.closed:  # refused, and the job ended meanwhile: the data is kept
                job._keep_locked(activation)
        raise
    with job.lock:
        activation.submitting = False
        activation.future = future
        closed = job.closed
    # Ended during the hand-over: withdraw it if the executor still can (outside the lock,
    # since a cancel may run the done-callback at once).
    if closed and job._withdraw(activation):
        with job.lock:
            job._keep_locked(activation)
    job._routine_started(activation)
    future.add_done_callback(partial(_on_done, job, activation))
    return future


def _payload(job: JobRun, activation: Activation) -> bytes:
    state = job.job_state
    # The fields of a JobSnapshot, as a plain tuple: a class in the payload would cost
    # cloudpickle a module lookup on every activation.
    snapshot = (
        state.job_id,
        state.flow_id,
        state.routine_states,
        dict(state.shared_data),
        list(state.shared_log),
        state.cancel_requested,
    )
    ticket = (activation.activation_id, activation.attempt, _remote_context(job, activation))
    parts: tuple[Any, ...] = (
        activation.routine,
        activation.slot_data,
        activation.policy_message,
        snapshot,
        ticket,
    )
    try:
        return dumps((_pickled_routine(activation.run.spec), *parts[1:]))
    except Exception as exc:
        names = (
            "the routine",
            "its slot data",
            "its policy message",
            "the job state",
            "the context a remote_activation_context hook returned",
        )
        culprit = "the activation"
        for name, part in zip(names, parts, strict=True):
            try:
                dumps(part)
            except Exception:
                culprit = name
                break
        raise RoutiluxError(
            f"cannot send routine {activation.routine_id!r} of job {state.job_id} to executor "
            f"{activation.run.spec.executor.name!r}: {culprit} cannot be pickled: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def _pickled_routine(spec: RoutineSpec) -> bytes:
    """The routine, pickled once per plan and config change rather than per activation.

    Pickling a routine whose class lives in ``__main__`` (by value) costs more than the rest
    of a trivial activation; workers keep the unpickled routine for the same bytes too.
    """
    version = spec.routine._config_version
    pickled = spec.pickled_routine
    if pickled is None or spec.pickled_config_version != version:
        pickled = dumps(spec.routine)
        spec.pickled_routine, spec.pickled_config_version = pickled, version
    return pickled


def _remote_context(job: JobRun, activation: Activation) -> dict[str, Any]:
    """The dicts ``remote_activation_context`` hooks return, merged; a hook that fails is
    logged and left out, like an observer, so telemetry never stops an activation."""
    hook = job.hooks.remote_activation_context
    if hook is None:
        return {}
    merged: dict[str, Any] = {}
    try:
        answers = hook(activation=activation)
    except Exception as exc:
        logger.opt(exception=True).error(
            "{} raised in hook remote_activation_context; routine {} of job {} runs without it",
            job.hooks.blame(hook, exc),
            activation.routine_id,
            job.job_state.job_id,
        )
        return merged
    for answer in reversed(answers):  # pluggy answers newest plugin first; the newest wins
        if isinstance(answer, dict):
            merged.update(answer)
        else:
            logger.error(
                "a remote_activation_context hook returned {!r}, not a dict; left out",
                type(answer).__name__,
            )
    return merged


def _finish_skipped(job: JobRun, activation: Activation, future: Future[Any]) -> None:
    job._finish(activation, None)


def _on_done(job: JobRun, activation: Activation, future: Future[Any]) -> None:
    """Apply a finished remote activation's effects, in order, then finish it."""
    routine_id = activation.routine_id
    state = job.job_state
    error: BaseException | None
    checkpoint = activation.checkpoint
    token = None
    if checkpoint is not None and not future.cancelled():  # replayed writes report to it
        checkpoint.ran = True
        token = current_recorder.set(checkpoint)
    try:
        error = _outcome_error(job, activation, future)
    except BaseException as exc:  # noqa: BLE001 - the activation must always finish
        logger.opt(exception=True).error("applying routine {} of job {}", routine_id, state.job_id)
        error = exc
    finally:
        if token is not None:
            current_recorder.reset(token)
    job._logic_returned(activation, error)


def _on_effects(job: JobRun, activation: Activation, batch: bytes) -> bytes:
    """Apply effects streamed by running remote logic (at an emit); the reply is the pickled
    error applying them raised (a full slot), which the emit raises in the logic."""
    checkpoint = activation.checkpoint
    token = None
    if checkpoint is not None:  # recorded in the activation's checkpoint, as at its end
        checkpoint.ran = True
        token = current_recorder.set(checkpoint)
    try:
        error = _apply(job, activation.routine_id, loads(batch))
    except Exception as exc:
        error = exc
    finally:
        if token is not None:
            current_recorder.reset(token)
    try:
        return dumps(error)
    except Exception:
        return dumps(RoutiluxError(f"{type(error).__name__}: {error}"))


def _outcome_error(
    job: JobRun, activation: Activation, future: Future[Any]
) -> BaseException | None:
    routine_id = activation.routine_id
    try:
        outcome = future.result()  # one look at the future in the common case
    except BaseException as exc:  # noqa: BLE001 - what the executor reports becomes the error
        return _executor_error(job, activation, future, exc)
    try:
        ops, routine_error = loads(outcome)
    except Exception as load_error:
        raise RoutiluxError(
            f"the outcome of routine {routine_id!r} of job {job.job_state.job_id} could not be "
            f"unpickled on the driver: {type(load_error).__name__}: {load_error}"
        ) from load_error
    return _apply(job, routine_id, ops) or routine_error


def _executor_error(
    job: JobRun, activation: Activation, future: Future[Any], exc: BaseException
) -> BaseException:
    """What the activation failed with when its executor gave no outcome."""
    where = f"routine {activation.routine_id!r} of job {job.job_state.job_id}"
    executor = activation.run.spec.executor.name
    if future.cancelled():
        return ExecutorError(f"{where} was cancelled in executor {executor!r} before it ran")
    if isinstance(exc, WorkerCrashedError):
        error = WorkerCrashedError(f"{exc} while running {where}", exc.pid, exc.exitcode)
        error.__cause__ = exc
        return error
    if isinstance(exc, CancelledError):
        return ExecutorError(f"{where} was stopped by executor {executor!r}: {exc}")
    return exc


def _apply(job: JobRun, routine_id: str, ops: list[tuple[Any, ...]]) -> BaseException | None:
    """Replay recorded operations; the first that raises (a full slot) ends the replay."""
    state = job.job_state
    for op in ops:
        kind = op[0]
        try:
            if kind == "emit":
                job.route_emit(routine_id, op[1], op[2])
            elif kind == "state":
                state.update_routine_state(op[1], op[2])
            elif kind == "set":
                state.shared_data[op[1]] = op[2]
            elif kind == "update":
                state.shared_data.update(op[1])
            elif kind == "delete":
                state.shared_data.pop(op[1], None)
            elif kind == "clear":
                state.shared_data.clear()
            elif kind == "append":
                state.shared_log.append(op[1])
            elif kind == "extend":
                state.shared_log.extend(op[1])
            elif kind == "record":
                state.record(op[1], op[2], op[3])
            else:
                raise RoutiluxError(f"unknown remote operation {kind!r} from {routine_id!r}")
        except Exception as exc:
            return exc
    return None
