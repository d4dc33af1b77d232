"""The plugin: a span per job, a child span per activation attempt, metrics, all from hooks.

Which hook runs where decides the design. ``routine_started`` and ``routine_finished`` run
in the worker thread for the thread executor and on the driver for remote executors, so
the activation span lives on the driver in both cases, kept by the activation's id (one
routine may run several activations at once in a job). For a remote executor the span is
opened when ``remote_activation_context`` asks what to ship (just before
``routine_started``), and its trace context travels with the activation: the worker's
``run_activation`` wrapper runs the logic inside a child span naming the worker.
In process, that wrapper makes the activation span current, so the logic's own spans
nest under it and ``event_emitted`` knows which activation emitted.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from loguru import logger
from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import Span, SpanContext, TracerProvider

from routilux_kernel import hookimpl
from routilux_otel import __version__
from routilux_otel import attributes as names
from routilux_otel.errors import record_error
from routilux_otel.instruments import Instruments
from routilux_otel.sdk_configuration import configure_from_environment, is_placeholder
from routilux_otel.worker_identity import (
    CONTEXT_KEY,
    carrier_for,
    remember_worker,
    traced_in_worker,
)

VERSION = __version__


@dataclass(slots=True)
class JobTrace:
    """A job being traced or measured: its span, and which span produced each emitted item."""

    job_state: Any
    flow_id: str
    span: Span
    context: Any
    #: ``id(data)`` of each emitted dict -> the span of the activation that emitted it.
    producers: dict[int, SpanContext] = field(default_factory=dict)
    #: The activations of each routine in flight, to attribute emits replayed on the driver.
    running: dict[str, list[ActivationTrace]] = field(default_factory=dict)


@dataclass(slots=True)
class ActivationTrace:
    span: Span
    recording: bool
    job: JobTrace
    routine_id: str
    started: float  # perf_counter, for the duration histogram


#: The traced activation whose logic runs in this thread (set by the run_activation wrapper).
_running: ContextVar[ActivationTrace | None] = ContextVar("routilux_otel_running", default=None)


class TelemetryPlugin:
    """Traces and measures every job and activation of the runtimes it is registered with.

    Installed, it is registered from its entry point when the global providers (the
    application's, else those built from ``OTEL_*``) record anything; see ``plugin.py``.
    Give ``tracer_provider`` / ``meter_provider`` to use specific ones
    (``Runtime(plugins=[TelemetryPlugin(...)])``).
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
        self._activations: dict[int, ActivationTrace] = {}

    # -- providers -----------------------------------------------------------------------

    def _current_tracer(self) -> trace.Tracer | None:
        """The tracer of the provider in force, or None while only the no-op API is there."""
        provider = self._own_tracer_provider
        if provider is None:
            configure_from_environment()
            provider = trace.get_tracer_provider()
            if is_placeholder(provider):
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
            if is_placeholder(provider):
                return None
        instruments = self._instruments
        if instruments is None or instruments.provider is not provider:
            instruments = self._instruments = Instruments(provider, VERSION, self._live_queues)
        return instruments

    def _live_queues(self) -> list[tuple[str, dict[str, dict[str, int]]]]:
        return [(job.flow_id, job.job_state.queue_depths()) for job in list(self._jobs.values())]

    # -- jobs ----------------------------------------------------------------------------

    @hookimpl
    def job_started(self, job_state: Any, flow: Any, entry_params: dict[str, Any]) -> None:
        flow_id = str(job_state.flow_id)
        instruments = self._current_instruments()
        if instruments is not None:
            instruments.jobs_started.add(1, {names.FLOW_ID: flow_id})
        tracer = self._current_tracer()
        if tracer is None:
            if instruments is None:
                return
            span: Span = trace.INVALID_SPAN  # measured, not traced
        else:
            span = tracer.start_span(f"job {flow_id}")
            if span.is_recording():
                span.set_attributes(
                    {
                        names.FLOW_ID: flow_id,
                        names.JOB_ID: str(job_state.job_id),
                        names.JOB_ENTRY_PARAMS_SIZE: len(entry_params),
                    }
                )
        context = trace.set_span_in_context(span)
        self._jobs[job_state.job_id] = JobTrace(job_state, flow_id, span, context)

    @hookimpl
    def job_finished(self, job_state: Any, flow: Any) -> None:
        job = self._jobs.pop(job_state.job_id, None)
        if job is None:
            return
        status = str(job_state.status)
        instruments = self._instruments
        if instruments is not None:
            attributes = {names.FLOW_ID: job.flow_id, names.JOB_STATUS: status}
            instruments.jobs_finished.add(1, attributes)
        span = job.span
        if span.is_recording():
            span.set_attribute(names.JOB_STATUS, status)
            if status == "failed":
                if job_state.error_routine_id is not None:
                    span.set_attribute(names.JOB_ERROR_ROUTINE, str(job_state.error_routine_id))
                record_error(span, job_state.exception)
            span.end()

    # -- activations ---------------------------------------------------------------------

    def _begin(self, job_state: Any, routine_id: str, activation: Any) -> ActivationTrace | None:
        """The activation's trace, opened by whichever hook asks first (see the module doc)."""
        traced = self._activations.get(activation.activation_id)
        if traced is not None:
            return traced
        job = self._jobs.get(job_state.job_id)
        if job is None:
            return None
        if self._tracer is not None and job.span is not trace.INVALID_SPAN:
            span = self._tracer.start_span(f"activation {routine_id}", context=job.context)
        else:
            span = trace.INVALID_SPAN
        recording = span.is_recording()
        if recording:
            span.set_attributes(
                {
                    names.FLOW_ID: job.flow_id,
                    names.JOB_ID: str(job_state.job_id),
                    names.ROUTINE_ID: routine_id,
                    names.ATTEMPT: activation.attempt + 1,
                }
            )
        traced = ActivationTrace(span, recording, job, routine_id, time.perf_counter())
        if recording and job.producers:
            try:
                _link_producers(traced, activation.slot_data)
            except Exception:  # telemetry must never fail the user's activation
                logger.opt(exception=True).error("routilux-otel could not link activation spans")
        self._activations[activation.activation_id] = traced
        job.running.setdefault(routine_id, []).append(traced)
        return traced

    @hookimpl
    def routine_started(self, job_state: Any, routine_id: str, activation: Any) -> None:
        self._begin(job_state, routine_id, activation)

    @hookimpl
    def remote_activation_context(self, activation: Any) -> dict[str, Any] | None:
        traced = self._begin(activation.job_state, activation.routine_id, activation)
        if traced is None or not traced.span.get_span_context().is_valid:
            return None
        return {CONTEXT_KEY: carrier_for(traced.span)}

    @hookimpl(wrapper=True)
    def run_activation(self, activation: Any) -> Generator[None, Any, Any]:
        traced = self._activations.get(activation.activation_id)
        if traced is None:
            carrier = activation.context.get(CONTEXT_KEY)
            tracer = self._current_tracer() if carrier is not None else None
            if tracer is None:  # untraced, or a worker that exports nothing
                return (yield)
            return (yield from traced_in_worker(tracer, activation, carrier))
        running = _running.set(traced)
        token = otel_context.attach(trace.set_span_in_context(traced.span))
        try:
            return (yield)
        finally:
            otel_context.detach(token)
            _running.reset(running)

    @hookimpl
    def event_emitted(self, job_state: Any, routine_id: str, event: str, data: Any) -> None:
        traced = _running.get()
        if traced is None or traced.routine_id != routine_id:
            # Replayed from a remote worker, emitted by async logic after its first await,
            # or from a helper thread: known only when one activation of it is in flight.
            job = self._jobs.get(job_state.job_id)
            in_flight = job.running.get(routine_id) if job is not None else None
            if not in_flight or len(in_flight) != 1:
                return
            traced = in_flight[0]
        if not traced.recording:
            return
        span = traced.span
        span.add_event(names.EMIT_EVENT, {names.EVENT_NAME: event, names.EVENT_SIZE: len(data)})
        traced.job.producers[id(data)] = span.get_span_context()

    @hookimpl
    def routine_finished(
        self, job_state: Any, routine_id: str, error: Any, activation: Any
    ) -> None:
        traced = self._activations.pop(activation.activation_id, None)
        if traced is None:
            return
        in_flight = traced.job.running.get(routine_id)
        if in_flight is not None:
            in_flight.remove(traced)
        outcome = names.OUTCOME_OK if error is None else names.OUTCOME_ERROR
        instruments = self._instruments
        if instruments is not None:
            attributes = {
                names.FLOW_ID: traced.job.flow_id,
                names.ROUTINE_ID: routine_id,
                names.OUTCOME: outcome,
            }
            instruments.activation_duration.record(time.perf_counter() - traced.started, attributes)
        if traced.recording:
            span = traced.span
            span.set_attribute(names.OUTCOME, outcome)
            record_error(span, error)
            span.end()

    @hookimpl(wrapper=True)
    def decide_error(self, failure: Any) -> Generator[None, Any, Any]:
        decision = yield
        instruments = self._instruments
        if instruments is not None and decision is not None and str(decision.action) == "retry":
            instruments.retries.add(
                1,
                {
                    names.FLOW_ID: str(failure.job_state.flow_id),
                    names.ROUTINE_ID: failure.routine_id,
                },
            )
        return decision

    # -- workers -------------------------------------------------------------------------

    @hookimpl
    def worker_setup(self, worker: Any) -> None:
        remember_worker(worker)


def _link_producers(traced: ActivationTrace, slot_data: Any) -> None:
    """Link the activation to the activation spans whose emits it consumes, once per slot."""
    producers = traced.job.producers
    if not isinstance(slot_data, dict):
        return
    for slot, items in slot_data.items():
        # SpanContext is not hashable (its TraceState is not): count by span id.
        counts: dict[int, tuple[SpanContext, int]] = {}
        for item in items or ():
            producer = producers.get(id(item))
            if producer is not None:
                _, count = counts.get(producer.span_id, (producer, 0))
                counts[producer.span_id] = (producer, count + 1)
        for producer, count in counts.values():
            traced.span.add_link(producer, {names.SLOT: str(slot), names.LINKED_ITEMS: count})
