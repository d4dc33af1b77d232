"""Runtime: runs many jobs of many flows concurrently on shared executors."""

from __future__ import annotations

import threading
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import pluggy

from routilux_kernel.core.context import current_activation
from routilux_kernel.core.error_handling import ErrorHandler
from routilux_kernel.core.errors import (
    ExecutorError,
    FlowNotFoundError,
    FlowValidationError,
    RoutiluxError,
    RuntimeShutDownError,
)
from routilux_kernel.core.flow import TRIGGER_SLOT, Flow
from routilux_kernel.core.job_state import ExecutionStatus, JobState
from routilux_kernel.core.job_store import JobStore, ProcessIdentity
from routilux_kernel.core.routine import Routine
from routilux_kernel.engine.checkpoints import JobCheckpoints
from routilux_kernel.engine.config import configured_executor
from routilux_kernel.engine.event_loop import RuntimeEventLoop
from routilux_kernel.engine.flow_registry import FlowRegistry
from routilux_kernel.engine.job_run import JobRun
from routilux_kernel.engine.plan import FlowPlan, build_plan
from routilux_kernel.engine.recovery import (
    FlowFinder,
    claim_jobs,
    default_flow_finder,
    rebuild_job,
)
from routilux_kernel.engine.store_choice import configured_store_url, open_store
from routilux_kernel.engine.timers import TimerService
from routilux_kernel.executors.contract import Executor
from routilux_kernel.executors.thread import ThreadExecutor
from routilux_kernel.hooks.calls import HookSet
from routilux_kernel.hooks.installed import get_plugin_manager, plugin_manager_with
from routilux_kernel.hooks.registry import registries_for

#: Finished jobs kept queryable by default (oldest forgotten first).
DEFAULT_MAX_RETAINED_JOBS = 1000


class Runtime:
    """Runs jobs of flows. Use it as a context manager so it shuts down cleanly.

    ``thread_pool_size`` bounds how many activations run at once (it is the default
    executor's ``max_workers``). ``executor`` names the executor (or is an Executor
    instance) and overrides the flow's and the configured one. ``plugins`` are hook
    objects that apply to this runtime only; ``plugin_manager`` replaces the process-wide
    one. ``store`` keeps jobs and checkpoints (a URL such as ``sqlite:///runs.db`` or a
    JobStore; default: ``ROUTILUX_STORE``, the config file's ``store``, else ``memory``).
    """

    def __init__(
        self,
        thread_pool_size: int | None = None,
        *,
        executor: str | Executor | None = None,
        executor_options: dict[str, Any] | None = None,
        plugins: Iterable[Any] = (),
        plugin_manager: pluggy.PluginManager | None = None,
        default_error_handler: ErrorHandler | None = None,
        max_retained_jobs: int = DEFAULT_MAX_RETAINED_JOBS,
        flow_registry: FlowRegistry | None = None,
        store: str | JobStore | None = None,
    ) -> None:
        if thread_pool_size is not None and (
            not isinstance(thread_pool_size, int) or thread_pool_size < 1
        ):
            raise ValueError(f"thread_pool_size must be an int >= 1, got {thread_pool_size!r}")
        if not isinstance(max_retained_jobs, int) or max_retained_jobs < 0:
            raise ValueError(f"max_retained_jobs must be an int >= 0, got {max_retained_jobs!r}")
        # Hook objects given here go in a copy of the manager, so they apply to this runtime only.
        plugins = list(plugins)
        base = plugin_manager if plugin_manager is not None else get_plugin_manager()
        plugin_manager = plugin_manager_with(plugins, base) if plugins else base
        self.plugin_manager = plugin_manager
        self.registries = registries_for(plugin_manager)
        self._hooks = HookSet(plugin_manager)
        self._thread_pool_size = thread_pool_size
        self.default_error_handler = default_error_handler
        self.max_retained_jobs = max_retained_jobs
        self.flow_registry = flow_registry or FlowRegistry.get_instance()
        self._executor_choice = executor
        self._executor_options = dict(executor_options or {})
        self._executors: dict[str, Executor] = {}
        #: Executors a shutdown is waiting for; a forced shutdown stops them at once.
        self._stopping_executors: list[Executor] = []
        # name -> (options it was created with, who asked first)
        self._executor_origins: dict[str, tuple[dict[str, Any], str]] = {}
        if isinstance(executor, Executor):
            self._executors[executor.name] = executor
            executor.start()
        elif executor is not None and not isinstance(executor, str):
            raise TypeError(
                f"executor must be a registered name or an Executor, got {type(executor).__name__}"
            )
        elif isinstance(executor, str) and executor not in self.registries.executors:
            known = ", ".join(self.registries.executors.names()) or "none"
            raise ExecutorError(
                f"Runtime(executor={executor!r}): no executor of that name is installed; "
                f"installed executors: {known}"
            )
        self._timers = TimerService()
        self._event_loop = RuntimeEventLoop()  # async logic runs here; started on first use
        self._lock = threading.Lock()
        self._executors_lock = threading.Lock()
        self._all_finished = threading.Condition(self._lock)
        self._active: dict[str, JobRun] = {}
        self._finished: OrderedDict[str, JobState] = OrderedDict()
        self._shut_down = False
        if isinstance(store, JobStore):
            self.store = store
        else:
            url, source = (store, "Runtime(store=...)") if store else configured_store_url()
            self.store = open_store(url, self.registries, source)
        self._owner = ProcessIdentity.current()
        self._recovering: dict[str, JobCheckpoints] = {}
        # A runtime dropped without shutdown() must not leave its executors' threads (or
        # processes) idle for the life of the interpreter: the finalizer holds only what it
        # releases, never the runtime, so the runtime can still be collected.
        self._finalizer = weakref.finalize(
            self, _release_forgotten_runtime, self._executors, self._timers
        )
        self._finalizer.atexit = False  # at exit, the executors' own exit handlers run

    @property
    def thread_pool_size(self) -> int:
        """How many activations the thread executor runs at once: the size given, else its
        default (``min(32, cpu_count + 4)``)."""
        if self._thread_pool_size is not None:
            return self._thread_pool_size
        return ThreadExecutor.default_max_workers()

    # -- running jobs --------------------------------------------------------------------

    def exec(
        self,
        flow_or_name: Flow | str,
        entry_params: dict[str, Any] | JobState | None = None,
        *,
        entry_routine_id: str | list[str] | None = None,
        job_state: JobState | None = None,
        timeout: float | None = None,
    ) -> JobState:
        """Start a job and return its JobState at once; the job runs in the background.

        ``job_state`` resumes a saved job (``JobState.from_dict``): its routine states and
        shared data are kept and the data it left in slots is delivered again. Entry
        routines are triggered as well only when ``entry_params`` or ``entry_routine_id``
        is given, or when the saved job left no data. A JobState given second, in place of
        ``entry_params`` (the original routilux's ``exec(flow_name, job_state)``), resumes.
        """
        if isinstance(entry_params, JobState):
            if job_state is not None:
                raise TypeError(
                    "exec() got a JobState both in place of entry_params and as job_state=; "
                    "pass it once, as job_state="
                )
            job_state, entry_params = entry_params, None
        if self._shut_down:
            raise RuntimeShutDownError("this Runtime was shut down; create a new one to run jobs")
        flow = self._resolve_flow(flow_or_name)
        trigger_entries = (
            job_state is None
            or not job_state.unconsumed
            or entry_params is not None
            or entry_routine_id is not None
        )
        if entry_params is None:
            entry_params = flow.params
        elif not isinstance(entry_params, dict):
            raise TypeError(
                f"exec({flow.flow_id!r}): entry_params must be a dict of keyword data, "
                f"got {type(entry_params).__name__}"
            )
        elif flow.params:
            entry_params = {**flow.params, **entry_params}
        if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):
            raise ValueError(
                f"exec({flow.flow_id!r}): timeout must be > 0 seconds, got {timeout!r}"
            )
        plan = self._plan_for(flow)
        entries = self._entries(plan, entry_routine_id) if trigger_entries else []
        resumed = job_state is not None
        if job_state is None:
            job_state = JobState(flow.flow_id)
        else:
            self._check_resumable(plan, job_state)
        # Claimed atomically: of two concurrent resumes of one job, one is refused.
        if not job_state._claim_for_run():
            raise ValueError(
                f"job {job_state.job_id} is still running (or logic of its last, cancelled run "
                "has not returned yet); it cannot be resumed now"
            )
        run = JobRun(self, flow, plan, job_state, timeout)
        if self.store.durable:
            try:
                self._checkpoint(run, entries, entry_params, fresh=not resumed)
            except BaseException:
                job_state._mark_done()  # hand it back finished, as it came
                raise
        with self._lock:
            if self._shut_down:
                job_state._mark_done()  # hand it back finished, as it came
                raise RuntimeShutDownError(
                    "this Runtime was shut down; create a new one to run jobs"
                )
            self._active[job_state.job_id] = run
            self._finished.pop(job_state.job_id, None)
        if resumed:
            job_state._cancel_requested = False
            job_state.status = ExecutionStatus.PENDING
            job_state.error = None
            job_state.error_routine_id = None
            job_state.finished_at = None
        try:
            run.start(entries, entry_params)
        except BaseException as exc:  # never leave a job registered as running
            run.abort(exc)
            raise
        return job_state

    def recover(
        self,
        job_ids: list[str] | None = None,
        *,
        flow_for: FlowFinder | None = None,
        wait_for_leases: bool = True,
    ) -> list[JobState]:
        """Run on the store's interrupted jobs (or ``job_ids``): each is claimed by exactly
        one process and re-runs only the activations that had not committed.

        Returns the JobStates at once; their owners were gone (a process on this machine
        that no longer runs; on another machine, one whose lease ran out, waited for).
        """
        if not self.store.durable:
            return []
        find = flow_for or default_flow_finder(self)
        states = []
        for stored in claim_jobs(self.store, self._owner, job_ids, wait_for_leases):
            checkpoints = rebuild_job(self.store, stored)
            state = checkpoints.job_state
            self._recovering[state.job_id] = checkpoints
            try:
                states.append(self.exec(find(stored), job_state=state, entry_routine_id=[]))
            finally:
                self._recovering.pop(state.job_id, None)
        return states

    def run(
        self,
        flow_or_name: Flow | str,
        entry_params: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        **options: Any,
    ) -> JobState:
        """Run one job and wait for it; a ``timeout`` fails the job when it runs out."""
        state = self.exec(flow_or_name, entry_params, timeout=timeout, **options)
        state.wait()
        return state

    def wait_until_all_jobs_finished(self, timeout: float | None = None) -> bool:
        """Block until no job is running; False if ``timeout`` seconds ran out first."""
        with self._all_finished:
            return self._all_finished.wait_for(lambda: not self._active, timeout)

    def get_job(self, job_id: str) -> JobState | None:
        with self._lock:
            run = self._active.get(job_id)
            return run.job_state if run is not None else self._finished.get(job_id)

    def list_jobs(self, status: ExecutionStatus | str | None = None) -> list[JobState]:
        """Running and retained jobs, oldest first, optionally of one status."""
        with self._lock:
            states = [run.job_state for run in self._active.values()]
            states.extend(self._finished.values())
        if status is not None:
            states = [s for s in states if s.status == status]
        return sorted(states, key=lambda s: s.created_at)

    def cancel_job(self, job_id: str) -> bool:
        """Cancel a running job; False if it is unknown or already finished."""
        with self._lock:
            run = self._active.get(job_id)
        return run.cancel() if run is not None else False

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
        """Take no new jobs; with ``wait``, let running jobs finish, else cancel them.

        Jobs still running when ``timeout`` runs out are cancelled, so nothing is left
        waiting on a timer that no longer runs. ``shutdown(wait=False)`` while another
        thread waits in ``shutdown(wait=True)`` forces that one: the executors it waits for
        stop their running work (as far as each can).
        """
        context = current_activation.get()
        if wait and getattr(getattr(context, "job", None), "runtime", None) is self:
            raise RoutiluxError(
                "Runtime.shutdown(wait=True) was called from routine logic of this runtime, "
                "which would wait for its own job forever; call shutdown(wait=False), or shut "
                "down from outside the job"
            )
        self._finalizer.detach()
        with self._lock:
            already_shut_down = self._shut_down and not self._executors
            self._shut_down = True
        if already_shut_down:
            for executor in [] if wait else list(self._stopping_executors):
                executor.shutdown(wait=False)
            return
        finished = wait and self.wait_until_all_jobs_finished(timeout)
        if not finished:
            with self._lock:
                running = list(self._active.values())
            for run in running:
                run.cancel("runtime shut down")
        self._timers.stop()
        self._event_loop.stop(wait=finished)
        with self._executors_lock:
            executors = list(self._executors.values())
            self._executors.clear()
            self._stopping_executors = executors
        for executor in executors:  # after a timeout, hung work must not hang shutdown too
            executor.shutdown(wait=finished)
        self._stopping_executors = []
        self.store.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown(wait=True)

    # -- internals -----------------------------------------------------------------------

    def _job_finished(self, run: JobRun) -> None:
        state = run.job_state
        with self._lock:
            if self._active.get(state.job_id) is run:  # not a resumed run that took its place
                del self._active[state.job_id]
            if self.max_retained_jobs:
                self._finished[state.job_id] = state
                while len(self._finished) > self.max_retained_jobs:
                    self._finished.popitem(last=False)
            if not self._active:
                self._all_finished.notify_all()

    def _checkpoint(
        self,
        run: JobRun,
        entries: list[tuple[str, str]],
        params: dict[str, Any],
        fresh: bool,
    ) -> None:
        """Give a job on a durable store its checkpoints; a new job is stored right here."""
        recovering = self._recovering
        checkpoints = recovering.pop(run.job_state.job_id, None) if recovering else None
        if checkpoints is None:
            checkpoints = JobCheckpoints(self.store, run.job_state, run.lock)
            checkpoints.store_new_job(run.plan, entries, params, self._owner, fresh)
        else:
            checkpoints.attach(run.lock)
        run._checkpoints = checkpoints

    def _resolve_flow(self, flow_or_name: Flow | str) -> Flow:
        if isinstance(flow_or_name, Flow):
            return flow_or_name
        if isinstance(flow_or_name, str):
            return self.flow_registry.require(flow_or_name)
        raise FlowNotFoundError(
            f"exec takes a Flow or a registered flow name, got {type(flow_or_name).__name__}"
        )

    def _plan_for(self, flow: Flow) -> FlowPlan:
        plan: FlowPlan | None = flow._runtime_plans.get(self)
        if plan is not None and plan.is_current(flow):
            return plan
        problems = [p for p in flow.validation_errors() if "no entry routine" not in p]
        if problems:
            raise FlowValidationError("; ".join(problems))
        plan = build_plan(flow, lambda rid, routine: self._executor_for(flow, rid, routine))
        flow._runtime_plans[self] = plan
        return plan

    @staticmethod
    def _check_resumable(plan: FlowPlan, job_state: JobState) -> None:
        """Refuse a saved job that does not belong to this flow, before it is registered."""
        flow = plan.flow
        if job_state.flow_id != flow.flow_id:
            raise FlowValidationError(
                f"exec({flow.flow_id!r}): saved job {job_state.job_id} belongs to flow "
                f"{job_state.flow_id!r}"
            )
        for routine_id, slots in job_state.unconsumed.items():
            spec = plan.specs.get(routine_id)
            if spec is None:
                raise FlowValidationError(
                    f"exec({flow.flow_id!r}): saved job {job_state.job_id} holds unconsumed data "
                    f"for routine {routine_id!r}, which this flow does not have; routines: "
                    f"{', '.join(flow.routines) or 'none'}"
                )
            for slot in slots:
                if slot not in spec.slots:
                    raise FlowValidationError(
                        f"exec({flow.flow_id!r}): saved job {job_state.job_id} holds unconsumed "
                        f"data for slot {slot!r} of routine {routine_id!r}; its slots: "
                        f"{', '.join(spec.slots) or 'none'}"
                    )

    def _entries(
        self, plan: FlowPlan, entry_routine_id: str | list[str] | None
    ) -> list[tuple[str, str]]:
        flow = plan.flow
        if entry_routine_id is None:
            entry_routine_id = flow.entry
        if entry_routine_id is None:
            if not plan.entry_ids:
                raise FlowValidationError(
                    f"flow {flow.flow_id!r} has no entry routine: no routine has a "
                    f"{TRIGGER_SLOT!r} slot that no connection feeds; pass entry_routine_id "
                    f"(routines: {', '.join(flow.routines) or 'none'})"
                )
            return [(rid, TRIGGER_SLOT) for rid in plan.entry_ids]
        ids = [entry_routine_id] if isinstance(entry_routine_id, str) else list(entry_routine_id)
        entries = []
        for rid in ids:
            spec = plan.specs.get(rid)
            if spec is None:
                raise FlowValidationError(
                    f"flow {flow.flow_id!r}: entry routine {rid!r} does not exist; routines: "
                    f"{', '.join(flow.routines) or 'none'}"
                )
            if TRIGGER_SLOT in spec.slots:
                entries.append((rid, TRIGGER_SLOT))
            elif len(spec.slots) == 1:
                entries.append((rid, spec.slot_names[0]))
            else:
                raise FlowValidationError(
                    f"flow {flow.flow_id!r}: entry routine {rid!r} has no {TRIGGER_SLOT!r} slot "
                    f"and {len(spec.slots)} slots ({', '.join(spec.slots) or 'none'}); give it a "
                    f"{TRIGGER_SLOT!r} slot"
                )
        return entries

    def _executor_for(self, flow: Flow, routine_id: str, routine: Routine) -> Executor:
        """Resolve by precedence: routine, code, flow, environment, config file, thread."""
        choice = self._executor_choice
        if routine.executor is not None:
            return self._executor_named_by_routine(flow, routine_id, routine.executor)
        if isinstance(choice, Executor):
            return choice
        elif choice is not None:
            name, options, source = choice, self._executor_options, "Runtime(executor=...)"
        elif flow.executor is not None:
            name, options, source = flow.executor, flow.executor_options, f"flow {flow.flow_id!r}"
        else:
            name, options, source = configured_executor()
        return self.executor(name, options, source)

    def _executor_named_by_routine(self, flow: Flow, routine_id: str, name: str) -> Executor:
        """A routine names only an executor; its options come from where else it is set up."""
        choice = self._executor_choice
        if isinstance(choice, Executor) and choice.name == name:
            return choice
        if choice == name:
            return self.executor(name, self._executor_options, "Runtime(executor=...)")
        if flow.executor == name:
            return self.executor(name, flow.executor_options, f"flow {flow.flow_id!r}")
        configured, options, source = configured_executor()
        if configured == name:
            return self.executor(name, options, source)
        return self.executor(name, {}, f"routine {routine_id!r}")

    def executor(
        self, name: str, options: dict[str, Any] | None = None, source: str = "code"
    ) -> Executor:
        """The runtime's executor of that name, created and started on first use."""
        # A separate lock: starting a cluster can take seconds, and jobs already running
        # must still be able to report that they finished meanwhile.
        options = dict(options or {})
        if self._thread_pool_size is not None:  # code beats flow file and config
            options["max_workers"] = self._thread_pool_size
        with self._executors_lock:
            existing = self._executors.get(name)
            if existing is not None:
                first_options, first_source = self._executor_origins.get(name, (options, source))
                if options and options != first_options:
                    raise ExecutorError(
                        f"executor {name!r} already runs in this runtime with options "
                        f"{first_options} (asked for by {first_source}); {source} asks for "
                        f"{options}. One runtime has one executor per name: use the same "
                        "options, or another Runtime"
                    )
                return existing
            if self._shut_down:
                raise RuntimeShutDownError("this Runtime was shut down; create a new one")
            try:
                factory = self.registries.executors.get(name)
            except LookupError as exc:
                raise ExecutorError(f"{exc} (asked for by {source})") from None
            try:
                created: Executor = factory(**options)
                created.start()
            except Exception as exc:
                raise ExecutorError(
                    f"executor {name!r} (asked for by {source}) failed to start with options "
                    f"{options}: {type(exc).__name__}: {exc}"
                ) from exc
            self._executors[name] = created
            self._executor_origins[name] = (options, source)
            return created

    def __repr__(self) -> str:
        return f"<Runtime active={len(self._active)} retained={len(self._finished)}>"


def _release_forgotten_runtime(executors: dict[str, Executor], timers: TimerService) -> None:
    """Runs when a Runtime that was never shut down is collected."""
    warnings.warn(
        "a Runtime was garbage-collected without shutdown(); use it as a context manager "
        "or call shutdown() so its executors are released at a known point",
        ResourceWarning,
        stacklevel=2,
    )
    timers.stop()
    for executor in list(executors.values()):
        executor.shutdown(wait=False)
    executors.clear()
