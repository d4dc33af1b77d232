"""Starting and cancelling jobs from the dashboard, on a Runtime of the serving process.

A job is started from the flow file recorded with that flow's newest stored job (read
again the way ``routilux run`` reads it), or from the stored definition for a flow built in
code. Only jobs this process runs can be cancelled: a job of another process is refused
with a message saying which process runs it.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pluggy

from routilux_kernel.core.flow import Flow
from routilux_kernel.core.job_store import JobQuery, JobStore
from routilux_kernel.engine.runtime import Runtime
from routilux_kernel.flowfiles import flow_entry, flow_from_dict, flow_params
from routilux_kernel.flowfiles.files import load_flow_file


class JobControlError(Exception):
    """A start or cancel request that cannot be done; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class JobControl:
    """Runs the jobs started from the dashboard; ``runtime`` may be one the caller owns."""

    def __init__(
        self,
        store: JobStore,
        plugin_manager: pluggy.PluginManager | None = None,
        runtime: Runtime | None = None,
        flows: dict[str, Flow] | None = None,
    ) -> None:
        self.store = store
        self.plugin_manager = plugin_manager
        self._runtime = runtime
        self._owns_runtime = runtime is None
        self._flows: dict[str, Flow] = dict(flows or {})
        self._lock = threading.Lock()

    def runtime(self) -> Runtime:
        with self._lock:
            if self._runtime is None:
                self._runtime = Runtime(store=self.store, plugin_manager=self.plugin_manager)
            return self._runtime

    def start(self, flow_id: str, params: dict[str, Any]) -> str:
        """Start a job of a known flow with ``params`` over its default entry data; its id."""
        if not isinstance(params, dict):
            raise JobControlError(
                f"params must be a JSON object of entry data, got {type(params).__name__}", 400
            )
        flow = self._flow(flow_id)
        state = self.runtime().exec(
            flow, {**flow_params(flow), **params}, entry_routine_id=flow_entry(flow)
        )
        self.store.flush()  # the new job is listed by the time the client follows the link
        return state.job_id

    def cancel(self, job_id: str) -> None:
        runtime = self._runtime
        state = None if runtime is None else runtime.get_job(job_id)
        if state is None or runtime is None:
            stored = self.store.load_job(job_id)
            if stored is None:
                raise JobControlError(f"job {job_id!r} is not in job store {self.store.url}", 404)
            owner = "" if stored.owner is None else f" (process {stored.owner.pid} on "
            owner += "" if stored.owner is None else f"{stored.owner.host})"
            raise JobControlError(
                f"job {job_id!r} is {stored.status} and not run by this server{owner}; only "
                "jobs this process runs can be cancelled here",
                409,
            )
        if state.is_finished or not runtime.cancel_job(job_id):
            raise JobControlError(f"job {job_id!r} already finished: {state.status}", 409)
        self.store.flush()

    def close(self) -> None:
        with self._lock:
            runtime, self._runtime = self._runtime, None
        if runtime is not None and self._owns_runtime:
            runtime.shutdown(wait=False)
            self.store.flush()

    def _flow(self, flow_id: str) -> Flow:
        if flow_id in self._flows:
            return self._flows[flow_id]
        page = self.store.query_jobs(JobQuery(flow_id=flow_id, limit=1))
        stored = None if not page.jobs else self.store.load_job(page.jobs[0]["job_id"])
        if stored is None:
            known = ", ".join(repr(flow["flow_id"]) for flow in self.store.list_flows())
            raise JobControlError(
                f"flow {flow_id!r} has no stored job in {self.store.url}; known flows: "
                f"{known or 'none'}",
                404,
            )
        if stored.flow_source is not None:
            flow = load_flow_file(stored.flow_source, plugin_manager=self.plugin_manager)
        elif stored.flow_snapshot is not None:
            flow = flow_from_dict(
                json.loads(stored.flow_snapshot), plugin_manager=self.plugin_manager
            )
        else:
            raise JobControlError(f"flow {flow_id!r} has no stored definition to run", 409)
        with self._lock:
            return self._flows.setdefault(flow_id, flow)
