"""``routilux run FLOW_FILE``: run jobs of a flow file on a Runtime and report how they went."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from routilux_kernel.cli.flow_arguments import (
    EXIT_JOB_FAILED,
    EXIT_OK,
    CommandInputError,
    check_executor_name,
    load_flow,
    parse_params,
)
from routilux_kernel.cli.interrupts import InterruptWatch
from routilux_kernel.cli.jobs_command import store_url
from routilux_kernel.cli.progress import ProgressDisplay
from routilux_kernel.cli.run_stop import stop_runtime
from routilux_kernel.cli.run_summary import job_record, left_data_unconsumed, summary_lines
from routilux_kernel.core.errors import ExecutorError, FlowValidationError
from routilux_kernel.core.flow import Flow
from routilux_kernel.core.job_state import ExecutionStatus, JobState
from routilux_kernel.core.job_store import JobStore, JobStoreError
from routilux_kernel.core.lazy_logger import logger
from routilux_kernel.engine.runtime import Runtime
from routilux_kernel.engine.store_choice import open_store
from routilux_kernel.flowfiles import flow_entry, flow_params
from routilux_kernel.hooks.registry import registries_for
from routilux_kernel.hooks.specs import hookimpl

#: How often the progress line redraws its elapsed time (only on a terminal).
PROGRESS_INTERVAL = 0.1


def run(args: argparse.Namespace) -> int:
    flow = load_flow(args)
    params = {**flow_params(flow), **parse_params(args.param)}
    pm = args.plugin_manager
    check_executor_name(registries_for(pm), args.executor)
    if args.max_workers is not None and "max_workers" in flow.executor_options:
        # The runtime only fills max_workers in where the file left it out; the flag wins.
        flow.set_executor(
            flow.executor, **{**flow.executor_options, "max_workers": args.max_workers}
        )
    logger.info(
        "running {} job(s) of flow {!r} from {} with params {}",
        args.jobs,
        flow.flow_id,
        args.flow_file,
        sorted(params),
    )
    watcher = JobWatcher(flow)
    display = ProgressDisplay(sys.stderr, args.jobs, f"routilux run {flow.flow_id}")
    started = time.monotonic()
    states: list[JobState] = []
    with InterruptWatch() as interrupts:
        watcher.on_change = interrupts.wake
        with _stdout_to_stderr(args.json), display.kept_clear_of(sys.stdout) as out:
            with contextlib.redirect_stdout(out):
                runtime = Runtime(
                    thread_pool_size=args.max_workers,
                    executor=args.executor,
                    plugin_manager=pm,
                    plugins=[watcher],  # applies to this runtime only
                    store=_open_store(args),
                )
                try:
                    pm.hook.run_started(args=args, runtime=runtime, flow=flow)
                    states = _start_jobs(runtime, flow, params, args)
                    runtime.store.flush()  # every job of this run is in the store from here on
                    _wait(watcher, display, len(states), interrupts)
                finally:
                    _run_finished(pm, args, runtime, flow, states)
                    stop_runtime(runtime, interrupts, display)
    elapsed = time.monotonic() - started
    if interrupts.signals:
        # What finished is still reported: the text to stderr, the records (--json) to stdout.
        for line in summary_lines(flow, states, elapsed, args.executor):
            print(line, file=sys.stderr)
        if args.json:
            print(json.dumps([job_record(state) for state in states], indent=2, default=repr))
        return 128 + interrupts.signals[0]
    if args.json:
        records = [job_record(state) for state in states]
        print(json.dumps(records, indent=2, default=repr))
    else:
        for line in summary_lines(flow, states, elapsed, args.executor):
            print(line)
    failed = [state for state in states if state.status != ExecutionStatus.COMPLETED]
    if failed:
        return EXIT_JOB_FAILED
    if args.strict and any(left_data_unconsumed(state) for state in states):
        return EXIT_JOB_FAILED
    return EXIT_OK


class JobWatcher:
    """A hook plugin that counts this flow's finished jobs, so the CLI waits instead of polling."""

    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.finished = 0
        self.failed = 0
        self._changed = threading.Condition()
        #: Called (from the finishing job's thread) after each count change.
        self.on_change: Callable[[], None] = _nothing

    @hookimpl
    def job_finished(self, job_state: JobState, flow: Flow) -> None:
        if flow is not self.flow:
            return
        logger.debug("job {} finished: {}", job_state.job_id, job_state.status)
        with self._changed:
            self.finished += 1
            if job_state.status != ExecutionStatus.COMPLETED:
                self.failed += 1
            self._changed.notify_all()
        self.on_change()

    def wait_for(self, total: int, timeout: float | None) -> bool:
        """True once ``total`` jobs finished; False if ``timeout`` seconds passed first."""
        with self._changed:
            return self._changed.wait_for(lambda: self.finished >= total, timeout)


def _run_finished(
    pm: Any, args: argparse.Namespace, runtime: Runtime, flow: Flow, states: list[JobState]
) -> None:
    """Tell plugins the run is over; one that fails is reported, the runtime still stops."""
    try:
        pm.hook.run_finished(args=args, runtime=runtime, flow=flow, job_states=list(states))
    except Exception as exc:
        print(
            f"routilux run: a run_finished hook failed: {type(exc).__name__}: {exc}",
            file=sys.stderr,
        )


def _open_store(args: argparse.Namespace) -> JobStore:
    url, source = store_url(args)
    try:
        return open_store(url, registries_for(args.plugin_manager), source)
    except JobStoreError as exc:
        raise CommandInputError(str(exc)) from None


def _start_jobs(
    runtime: Runtime, flow: Flow, params: dict[str, Any], args: argparse.Namespace
) -> list[JobState]:
    states: list[JobState] = []
    try:
        for _ in range(args.jobs):
            states.append(
                runtime.exec(
                    flow, dict(params), entry_routine_id=flow_entry(flow), timeout=args.timeout
                )
            )
    except (FlowValidationError, ExecutorError) as exc:
        for state in states:
            runtime.cancel_job(state.job_id)
        raise CommandInputError(f"{args.flow_file}: {exc}") from None
    return states


def _wait(
    watcher: JobWatcher, display: ProgressDisplay, total: int, interrupts: InterruptWatch
) -> None:
    """Until every job finished or a signal came; the progress line redraws meanwhile."""
    interval = PROGRESS_INTERVAL if display.enabled else None
    while watcher.finished < total and not interrupts.signals:
        interrupts.wait(interval)
        display.update(watcher.finished, watcher.failed)
    if not interrupts.signals:
        display.finish(watcher.finished, watcher.failed)


def _nothing() -> None:
    pass


@contextlib.contextmanager
def _stdout_to_stderr(active: bool) -> Iterator[None]:
    """While active, whatever routines print (in this process or in workers it starts) goes to
    stderr, so stdout carries nothing but the JSON."""
    if not active:
        yield
        return
    sys.stdout.flush()
    saved = None
    try:
        stdout_fd, stderr_fd = sys.stdout.fileno(), sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        stdout_fd = stderr_fd = -1  # replaced streams (tests): the Python-level redirect will do
    if stdout_fd >= 0:
        saved = os.dup(stdout_fd)
        os.dup2(stderr_fd, stdout_fd)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        if saved is not None:
            os.dup2(saved, stdout_fd)
            os.close(saved)
