"""The plugin: a span per job, a child span per activation attempt, metrics, all from hooks.

Which hook runs where decides the design. ``routine_started`` and ``routine_finished`` run
in the worker thread for the thread executor and on the driver for remote executors, so
the activation span lives on the driver in both cases, kept by ``(job id, routine id)``:
a routine runs one activation at a time in a job. The ``run_activation`` wrapper, which
runs in the worker, makes that span current for in-process logic (so the logic's own spans
nest under it) and, in a remote worker, notes which worker ran it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from loguru import logger
from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import Span, SpanContext, Status, StatusCode, TracerProvider

from routilux_kernel import hookimpl
from routilux_otel import attributes as names
from routilux_otel.instruments import Instruments
from routilux_otel.sdk_configuration import configure_from_environment
from routilux_otel.worker_identity import record_worker, remember_worker, worker_of

VERSION = "0.1.0"


@dataclass(slots=True)
class JobTrace:
    """A traced job: its span, and which activation span produced each emitted item."""

    span: Span
    context: Any
    flow_id: str
    #: ``id(data)`` of each emitted dict -> the span of the activation that emitted it.
    producers: dict[int, SpanContext] = field(default_factory=dict)
    #: The job's slot queues by routine id, once an in-process activation showed them.
    queues: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ActivationTrace:
    span: Span
    context: Any
    job: JobTrace | None
    started: float  # perf_counter, for the duration histogram
    handed_over_at: float  # time.time(), to find the worker's history entry


class TelemetryPlugin:
    """Traces and measures every job and activation of the runtimes it is registered with.

    Installed, it is registered from its entry point with the global providers: those the
    application set before its first job, else ones built from ``OTEL_*`` variables. Give
    ``tracer_provider`` / ``meter_provider`` to use specific ones (``Runtime(plugins=[...])``).
    """

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        self._own_tracer_provider = tracer_provider
        self._own_meter_provider = meter_provider
        self._tracer: trace.Tracer | None = None
        self._tracer_from: TracerProvider | None = None
        self._instruments: Instruments | None = None
        self._jobs: dict[str, JobTrace] = {}
        self._activations: dict[tuple[str, str], ActivationTrace] = {}
        self._next_attempt: dict[tuple[str, str], int] = {}

    # -- providers -----------------------------------------------------------------------

    def _current_tracer(self) -> trace.Tracer | None:
        """The tracer of the provider in force, or None while only the no-op API is there."""
        provider = self._own_tracer_provider
        if provider is None:
            configure_from_environment()
            provider = trace.get_tracer_provider()
            if isinstance(provider, trace.ProxyTracerProvider):
                return None  # nobody listens: make no spans at all
        if provider is not self._tracer_from:
            self._tracer = provider.get_tracer(names.SCOPE, VERSION)
            self._tracer_from = provider
        return self._tracer

    def _current_instruments(self) -> Instruments | None:
        provider = self._own_meter_provider
        if provider is None:
            configure_from_environment()
            provider = metrics.get_meter_provider()
            if type(provider).__name__ == "_ProxyMeterProvider":
                return None
        instruments = self._instruments
        if instruments is None or instruments.provider is not provider:
            instruments = self._instruments = Instruments(provider, VERSION, self._live_queues)
        return instruments

    def _live_queues(self) -> list[tuple[str, dict[str, Any]]]:
        return [(job.flow_id, job.queues) for job in list(self._jobs.values())]

    # -- jobs ----------------------------------------------------------------------------

    @hookimpl
    def job_started(self, job_state: Any, flow: Any) -> None:
        flow_id = str(job_state.flow_id)
        instruments = self._current_instruments()
        if instruments is not None:
            instruments.jobs_started.add(1, {names.FLOW_ID: flow_id})
        tracer = self._current_tracer()
        if tracer is None:
            return
        span = tracer.start_span(
            f"job {flow_id}",
            attributes={names.FLOW_ID: flow_id, names.JOB_ID: str(job_state.job_id)},
        )
        self._jobs[job_state.job_id] = JobTrace(span, trace.set_span_in_context(span), flow_id)

    @hookimpl
    def job_finished(self, job_state: Any, flow: Any) -> None:
        status = str(job_state.status)
        flow_id = str(job_state.flow_id)
        instruments = self._instruments
        if instruments is not None:
            instruments.jobs_finished.add(1, {names.FLOW_ID: flow_id, names.JOB_STATUS: status})
        job = self._jobs.pop(job_state.job_id, None)
        if job is None:
            return
        span = job.span
        span.set_attribute(names.JOB_STATUS, status)
        if status == "failed":
            if job_state.error_routine_id is not None:
                span.set_attribute(names.JOB_ERROR_ROUTINE, str(job_state.error_routine_id))
            _record_error(span, job_state.exception)
        span.end()

    # -- activations ---------------------------------------------------------------------

    @hookimpl
    def routine_started(self, job_state: Any, routine_id: str) -> None:
        key = (job_state.job_id, routine_id)
        attempt = self._next_attempt.pop(key, 1)
        job = self._jobs.get(job_state.job_id)
        if job is None:
            if self._instruments is None:
                return
            # Untraced but measured: a span-less record keeps the start time.
            self._activations[key] = ActivationTrace(
                trace.INVALID_SPAN, None, None, time.perf_counter(), time.time()
            )
            return
        span = self._tracer_of_job().start_span(
            f"activation {routine_id}",
            context=job.context,
            attributes={
                names.FLOW_ID: job.flow_id,
                names.JOB_ID: str(job_state.job_id),
                names.ROUTINE_ID: routine_id,
                names.ATTEMPT: attempt,
            },
        )
        self._activations[key] = ActivationTrace(
            span, trace.set_span_in_context(span), job, time.perf_counter(), time.time()
        )

    def _tracer_of_job(self) -> trace.Tracer:
        tracer = self._tracer
        assert tracer is not None  # a traced job exists only once a tracer was made
        return tracer

    @hookimpl(wrapper=True)
    def run_activation(self, activation: Any) -> Any:
        if getattr(activation, "job", None) is None:  # in a remote worker
            record_worker(activation.job_state, activation.routine_id)
            return (yield)
        traced = self._activations.get((activation.job_state.job_id, activation.routine_id))
        if traced is None or traced.job is None:
            return (yield)
        try:
            _link_producers(traced, activation.slot_data)
            if not traced.job.queues:
                traced.job.queues = _slot_queues_of(activation)
        except Exception:  # telemetry must never fail the user's activation
            logger.opt(exception=True).error("routilux-otel could not link activation spans")
        token = otel_context.attach(traced.context)
        try:
            return (yield)
        finally:
            otel_context.detach(token)

    @hookimpl
    def event_emitted(self, job_state: Any, routine_id: str, event: str, data: Any) -> None:
        traced = self._activations.get((job_state.job_id, routine_id))
        if traced is None or traced.job is None:
            return
        span = traced.span
        span.add_event(names.EMIT_EVENT, {names.EVENT_NAME: event, names.EVENT_SIZE: len(data)})
        traced.job.producers[id(data)] = span.get_span_context()

    @hookimpl
    def routine_finished(self, job_state: Any, routine_id: str, error: Any) -> None:
        traced = self._activations.pop((job_state.job_id, routine_id), None)
        if traced is None:
            return
        outcome = names.OUTCOME_OK if error is None else names.OUTCOME_ERROR
        instruments = self._instruments
        if instruments is not None:
            instruments.activation_duration.record(
                time.perf_counter() - traced.started,
                {
                    names.FLOW_ID: str(job_state.flow_id),
                    names.ROUTINE_ID: routine_id,
                    names.OUTCOME: outcome,
                },
            )
        if traced.job is None:
            return
        span = traced.span
        span.set_attribute(names.OUTCOME, outcome)
        worker = worker_of(job_state, routine_id, traced.handed_over_at)
        if worker is not None:
            span.set_attributes(worker)
        if error is not None:
            _record_error(span, error)
        span.end()

    @hookimpl(wrapper=True)
    def decide_error(self, failure: Any) -> Any:
        decision = yield
        if decision is not None and str(decision.action) == "retry":
            job_state = failure.job_state
            # The kernel counts attempts from 0; spans say "attempt 1" for the first run.
            self._next_attempt[(job_state.job_id, failure.routine_id)] = failure.attempt + 2
            instruments = self._instruments
            if instruments is not None:
                instruments.retries.add(
                    1, {names.FLOW_ID: str(job_state.flow_id), names.ROUTINE_ID: failure.routine_id}
                )
        return decision

    # -- workers -------------------------------------------------------------------------

    @hookimpl
    def worker_setup(self, worker: Any) -> None:
        remember_worker(worker)
        if self._own_tracer_provider is None:
            # Spans that remote logic makes itself go where the worker's OTEL_* says.
            configure_from_environment()


def _record_error(span: Span, error: BaseException | None) -> None:
    if error is None:
        return
    remote_type = getattr(error, "error_type", None)
    if isinstance(remote_type, str):  # a RoutineError from a worker: report the original
        message = str(getattr(error, "message", error))
        span.record_exception(
            error,
            attributes={
                "exception.type": remote_type,
                "exception.message": message,
                "exception.stacktrace": str(getattr(error, "remote_traceback", "") or ""),
            },
        )
        span.set_status(Status(StatusCode.ERROR, f"{remote_type}: {message}"))
        return
    span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))


def _link_producers(traced: ActivationTrace, slot_data: Any) -> None:
    """Link the activation to the activation spans whose emits it consumes, once per slot."""
    job = traced.job
    if job is None or not job.producers or not isinstance(slot_data, dict):
        return
    for slot, items in slot_data.items():
        # SpanContext is not hashable (its TraceState is not): count by span id.
        counts: dict[int, tuple[SpanContext, int]] = {}
        for item in items or ():
            producer = job.producers.get(id(item))
            if producer is not None:
                _, count = counts.get(producer.span_id, (producer, 0))
                counts[producer.span_id] = (producer, count + 1)
        for producer, count in counts.values():
            traced.span.add_link(producer, {names.SLOT: str(slot), names.LINKED_ITEMS: count})


def _slot_queues_of(activation: Any) -> dict[str, Any]:
    """Every routine's slot queues (``SlotQueues``, with ``counts()``) in the activation's job.

    Private kernel attribute: ``Activation.job.runs``. No hook or public object shows a job's
    queues yet; the day one does, only this function changes.
    """
    runs = getattr(getattr(activation, "job", None), "runs", None)
    return runs if isinstance(runs, dict) else {}
