"""The plugin: a span per job, a child span per activation attempt, metrics, all from hooks.

Which hook runs where decides the design. ``run_activation`` and ``routine_finished`` run
in the worker thread for the thread executor; for remote executors ``routine_finished``
runs on the driver, so the activation's trace lives on the driver in both cases, kept by
the activation's id (one routine may run several activations at once in a job). In
process, the ``run_activation`` wrapper opens it and makes its span current, so the
logic's own spans nest under it and ``event_emitted`` knows which activation emitted.
For a remote executor it is opened when ``remote_activation_context`` asks what to ship,
and its trace context travels with the activation: the worker's ``run_activation``
wrapper runs the logic inside a child span naming the worker.

Per activation the span's identity is fixed when it starts; what it gathers (emits,
links, outcome, error) is kept as plain values and written out in one go when it ends
(span_building.py says why).
"""

from __future__ import annotations

from collections.abc import Generator
from contextvars import ContextVar
from dataclasses import dataclass, field
from time import time_ns
from typing import Any

from loguru import logger
from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, TracerProvider

from routilux_kernel import hookimpl
from routilux_otel import __version__
from routilux_otel import attributes as names
from routilux_otel.errors import EXCEPTION_EVENT, describe_error
from routilux_otel.instruments import Instruments
from routilux_otel.sdk_configuration import configure_from_environment, is_placeholder
from routilux_otel.span_building import (
    UNSET,
    EventRecord,
    PendingSpan,
    SpanBuilder,
    span_builder,
)
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
    #: None when only measured; its builder makes the spans of the job's activations too.
    span: PendingSpan | None
    builder: SpanBuilder | None
    #: What every span of the job carries (flow id, job id).
    identity: dict[str, Any]
    entry_params_size: int
    #: The context whose current span is the job's: the parent of its activation spans.
    context: Any = None
    #: ``id(data)`` of each emitted dict -> the span of the activation that emitted it.
    producers: dict[int, SpanContext] = field(default_factory=dict)


@dataclass(slots=True)
class ActivationTrace:
    """An activation attempt in flight: what its span gathers until it ends."""

    span: PendingSpan | None  # None when not traced
    job: JobTrace
    routine_id: str
    attempt: int
    started_ns: int  # for the duration histogram too
    events: list[EventRecord] | None = None
    links: list[tuple[SpanContext, dict[str, Any]]] | None = None


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
        self._builder: SpanBuilder | None = None
        self._tracer_from: TracerProvider | None = None
        self._instruments: Instruments | None = None
        self._jobs: dict[str, JobTrace] = {}
        self._activations: dict[int, ActivationTrace] = {}
        #: The duration histogram's attribute sets, made once per flow, routine and outcome.
        self._duration_attributes: dict[tuple[str, str, str], dict[str, str]] = {}

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
            tracer = provider.get_tracer(names.SCOPE, VERSION)
            self._builder = span_builder(tracer, InstrumentationScope(names.SCOPE, VERSION))
            self._tracer, self._tracer_from = tracer, provider
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
        if tracer is None and instruments is None:
            return
        builder = self._builder if tracer is not None else None
        # The parent is the caller's current span, as for any span started without one.
        span = builder.start(f"job {flow_id}", None, time_ns()) if builder is not None else None
        identity = {names.FLOW_ID: flow_id, names.JOB_ID: str(job_state.job_id)}
        context = span.as_current() if span is not None else None
        self._jobs[job_state.job_id] = JobTrace(
            job_state, flow_id, span, builder, identity, len(entry_params), context
        )

    @hookimpl
    def job_finished(self, job_state: Any, flow: Any) -> None:
        job = self._jobs.pop(job_state.job_id, None)
        if job is None:
            return
        status = str(job_state.status)
        instruments = self._instruments
        if instruments is not None:
            instruments.jobs_finished.add(1, {names.FLOW_ID: job.flow_id, names.JOB_STATUS: status})
        span = job.span
        if span is None or not span.recording:
            return
        assert job.builder is not None
        end_ns = time_ns()
        attributes: dict[str, Any] = {
            **job.identity,
            names.JOB_ENTRY_PARAMS_SIZE: job.entry_params_size,
            names.JOB_STATUS: status,
        }
        events: list[EventRecord] = []
        outcome = UNSET
        if status == "failed":
            if job_state.error_routine_id is not None:
                attributes[names.JOB_ERROR_ROUTINE] = str(job_state.error_routine_id)
            if job_state.exception is not None:
                error_attributes, outcome = describe_error(job_state.exception)
                events.append((EXCEPTION_EVENT, error_attributes, end_ns))
        job.builder.end(span, attributes, events, (), outcome, end_ns)

    # -- activations ---------------------------------------------------------------------

    def _begin(self, job_state: Any, routine_id: str, activation: Any) -> ActivationTrace | None:
        """The activation's trace, opened by whichever hook asks first (see the module doc)."""
        traced = self._activations.get(activation.activation_id)
        if traced is not None:
            return traced
        job = self._jobs.get(job_state.job_id)
        if job is None:
            return None
        started_ns = time_ns()
        span = None
        if job.span is not None:
            assert job.builder is not None
            name = f"activation {routine_id}"
            span = job.builder.start(name, job.context, started_ns, job.span)
        traced = ActivationTrace(span, job, routine_id, activation.attempt + 1, started_ns)
        if span is not None and span.recording and job.producers:
            try:
                traced.links = _producer_links(job.producers, activation.slot_data)
            except Exception:  # telemetry must never fail the user's activation
                logger.opt(exception=True).error("routilux-otel could not link activation spans")
        self._activations[activation.activation_id] = traced
        return traced

    @hookimpl
    def remote_activation_context(self, activation: Any) -> dict[str, Any] | None:
        traced = self._begin(activation.job_state, activation.routine_id, activation)
        if traced is None or traced.span is None or not traced.span.context.is_valid:
            return None
        return {CONTEXT_KEY: carrier_for(traced.span.as_current())}

    @hookimpl(wrapper=True)
    def run_activation(self, activation: Any) -> Generator[None, Any, Any]:
        # In process this opens the activation's trace (no routine_started hook needed: one
        # hook call less per activation); in a worker process the driver opened it.
        try:
            traced = self._begin(activation.job_state, activation.routine_id, activation)
        except Exception:  # telemetry must never fail the user's activation: run it untraced
            logger.opt(exception=True).error(
                "routilux-otel could not trace routine {} of job {}",
                activation.routine_id,
                activation.job_state.job_id,
            )
            return (yield)
        if traced is None:
            carrier = activation.context.get(CONTEXT_KEY)
            tracer = self._current_tracer() if carrier is not None else None
            if tracer is None:  # untraced, or a worker that exports nothing
                return (yield)
            return (yield from traced_in_worker(tracer, activation, carrier))
        running = _running.set(traced)
        token = otel_context.attach(traced.span.as_current()) if traced.span else None
        try:
            return (yield)
        finally:
            if token is not None:
                otel_context.detach(token)
            _running.reset(running)

    @hookimpl
    def event_emitted(self, job_state: Any, routine_id: str, event: str, data: Any) -> None:
        traced = _running.get()
        if traced is None or traced.routine_id != routine_id:
            # Replayed from a remote worker, emitted by async logic after its first await,
            # or from a helper thread: known only when one activation of it is in flight.
            traced = self._only_one_in_flight(job_state.job_id, routine_id)
            if traced is None:
                return
        span = traced.span
        if span is None or not span.recording:
            return
        emitted = {names.EVENT_NAME: event, names.EVENT_SIZE: len(data)}
        record = (names.EMIT_EVENT, emitted, time_ns())
        if traced.events is None:
            traced.events = [record]
        else:
            traced.events.append(record)
        traced.job.producers[id(data)] = span.context

    def _only_one_in_flight(self, job_id: str, routine_id: str) -> ActivationTrace | None:
        """The routine's activation in flight in the job, if there is exactly one.

        A scan of every activation in flight: only emits made outside a traced logic's
        own thread come here, and no list per routine is kept up to date on every
        activation for them.
        """
        found = None
        for traced in list(self._activations.values()):
            if traced.routine_id == routine_id and traced.job.job_state.job_id == job_id:
                if found is not None:
                    return None
                found = traced
        return found

    @hookimpl
    def routine_finished(
        self, job_state: Any, routine_id: str, error: Any, activation: Any
    ) -> None:
        traced = self._activations.pop(activation.activation_id, None)
        if traced is None:
            return
        end_ns = time_ns()
        job = traced.job
        outcome = names.OUTCOME_OK if error is None else names.OUTCOME_ERROR
        instruments = self._instruments
        if instruments is not None:
            key = (job.flow_id, routine_id, outcome)
            attributes = self._duration_attributes.get(key)
            if attributes is None:
                attributes = self._duration_attributes[key] = {
                    names.FLOW_ID: job.flow_id,
                    names.ROUTINE_ID: routine_id,
                    names.OUTCOME: outcome,
                }
            instruments.activation_duration.record((end_ns - traced.started_ns) / 1e9, attributes)
        span = traced.span
        if span is None or not span.recording:
            return
        assert job.builder is not None
        events = traced.events or []
        status = UNSET
        if error is not None:
            error_attributes, status = describe_error(error)
            events.append((EXCEPTION_EVENT, error_attributes, end_ns))
        job.builder.end(
            span,
            {
                **job.identity,
                names.ROUTINE_ID: routine_id,
                names.ATTEMPT: traced.attempt,
                names.OUTCOME: outcome,
            },
            events,
            traced.links or (),
            status,
            end_ns,
        )

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


def _producer_links(
    producers: dict[int, SpanContext], slot_data: Any
) -> list[tuple[SpanContext, dict[str, Any]]] | None:
    """Links to the activation spans whose emits this activation consumes, one per slot."""
    if not isinstance(slot_data, dict):
        return None
    links = []
    for slot, items in slot_data.items():
        if items and len(items) == 1:  # the usual slice: one item, one producer at most
            producer = producers.get(id(items[0]))
            if producer is not None:
                links.append((producer, {names.SLOT: str(slot), names.LINKED_ITEMS: 1}))
            continue
        # SpanContext is not hashable (its TraceState is not): count by span id.
        counts: dict[int, tuple[SpanContext, int]] = {}
        for item in items or ():
            producer = producers.get(id(item))
            if producer is not None:
                _, count = counts.get(producer.span_id, (producer, 0))
                counts[producer.span_id] = (producer, count + 1)
        for producer, count in counts.values():
            links.append((producer, {names.SLOT: str(slot), names.LINKED_ITEMS: count}))
    return links or None
