"""Spans opened when a job or activation starts and written out, whole, when it ends.

An activation's span needs its identity (trace id, span id, sampled flag) when the
activation starts: the logic runs with it as the current span, a remote worker gets it
as its parent, consumers link to it. Everything else (attributes, emits, links, status)
is known by the end. The SDK's ``Span`` checks and locks on every ``set_attribute``,
``add_event`` and ``add_link``; at some microseconds each that is several times the
kernel's own cost of a routed event. So with the SDK's tracer, :class:`SdkSpanBuilder`
asks the tracer's sampler and id generator exactly as ``Tracer.start_span`` does, keeps
what the span gathers in a :class:`PendingSpan`, and hands one finished ``ReadableSpan``
to the tracer's span processors at the end. Any other tracer goes through
:class:`ApiSpanBuilder`: a span of that tracer, started at once, filled and ended at the end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk.trace import (
    ConcurrentMultiSpanProcessor,
    Event,
    ReadableSpan,
    SpanLimits,
    SpanProcessor,
    SynchronousMultiSpanProcessor,
)
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    ParentBased,
    ParentBasedTraceIdRatio,
    Sampler,
    SamplingResult,
    StaticSampler,
    TraceIdRatioBased,
)
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

UNSET = Status(StatusCode.UNSET)

#: (name, attributes, time in ns) of a span event, made into an SDK Event only if recorded.
EventRecord = tuple[str, Mapping[str, Any], int]


class PendingSpan:
    """A span between its start and its end: its identity now, its content at the end."""

    __slots__ = (
        "name",
        "context",
        "parent",
        "recording",
        "start_ns",
        "attributes",
        "live",
        "child_sampling",
    )

    def __init__(
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        recording: bool,
        start_ns: int,
        attributes: Mapping[str, Any] | None = None,
        live: trace.Span | None = None,
    ) -> None:
        self.name = name
        self.context = context
        self.parent = parent
        self.recording = recording
        self.start_ns = start_ns
        #: What the sampler added (SDK builder only).
        self.attributes = attributes
        #: The API builder's span, started already.
        self.live = live
        #: The sampler's answer (and trace flags) for this span's children, when it is the
        #: same for all of them.
        self.child_sampling: tuple[SamplingResult, TraceFlags] | None = None

    def as_current(self) -> Context:
        """A context whose current span is this one (for the logic, or to propagate)."""
        if self.live is not None:
            return trace.set_span_in_context(self.live)
        return trace.set_span_in_context(trace.NonRecordingSpan(self.context))


def span_builder(tracer: trace.Tracer, scope: InstrumentationScope) -> SpanBuilder:
    """The fast builder for the SDK's tracer, the API one for any other."""
    if isinstance(tracer, SdkTracer):
        return SdkSpanBuilder(tracer, scope)
    return ApiSpanBuilder(tracer)


#: The SDK's processors whose ``on_start`` does nothing.
_START_IGNORED = (BatchSpanProcessor, SimpleSpanProcessor)


def _ignores_start(processor: Any) -> bool:
    """True when ``processor`` (and, for the SDK's multi-processors, each of its own) does
    nothing in ``on_start``: not overridden, or one of the SDK's exporting processors."""
    if isinstance(processor, SynchronousMultiSpanProcessor | ConcurrentMultiSpanProcessor):
        inner = getattr(processor, "_span_processors", None)  # private: unknown means no
        return isinstance(inner, tuple | list) and all(_ignores_start(p) for p in inner)
    if isinstance(processor, _START_IGNORED):
        return type(processor).on_start in (cls.on_start for cls in _START_IGNORED)
    return type(processor).on_start is SpanProcessor.on_start


class SpanBuilder:
    """Opens spans at their start and writes them out at their end."""

    def start(
        self,
        name: str,
        parent: Context | None,
        start_ns: int,
        parent_span: PendingSpan | None = None,
    ) -> PendingSpan:
        """Open a span; ``parent_span`` is the pending span current in ``parent``, if any."""
        raise NotImplementedError

    def end(
        self,
        span: PendingSpan,
        attributes: Mapping[str, Any],
        events: Sequence[EventRecord],
        links: Sequence[tuple[SpanContext, Mapping[str, Any]]],
        status: Status,
        end_ns: int,
    ) -> None:
        """Write out a recording span (callers skip spans that do not record)."""
        raise NotImplementedError


class ApiSpanBuilder(SpanBuilder):
    """Through the tracer's own ``start_span`` and span methods: any API implementation."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    def start(
        self,
        name: str,
        parent: Context | None,
        start_ns: int,
        parent_span: PendingSpan | None = None,
    ) -> PendingSpan:
        span = self._tracer.start_span(name, context=parent, start_time=start_ns)
        parent_context = trace.get_current_span(parent).get_span_context()
        return PendingSpan(
            name,
            span.get_span_context(),
            parent_context if parent_context.is_valid else None,
            span.is_recording(),
            start_ns,
            live=span,
        )

    def end(
        self,
        span: PendingSpan,
        attributes: Mapping[str, Any],
        events: Sequence[EventRecord],
        links: Sequence[tuple[SpanContext, Mapping[str, Any]]],
        status: Status,
        end_ns: int,
    ) -> None:
        live = span.live
        assert live is not None
        live.set_attributes(attributes)
        for name, event_attributes, timestamp in events:
            live.add_event(name, event_attributes, timestamp)
        for context, link_attributes in links:
            live.add_link(context, link_attributes)
        if status.status_code is not StatusCode.UNSET:
            live.set_status(status)
        live.end(end_ns)


class SdkSpanBuilder(SpanBuilder):
    """``Tracer.start_span``'s decisions, one ``ReadableSpan`` to the processors at the end.

    The sampler, id generator, resource and span processor are the tracer's; the span
    limits are applied as the SDK's span applies them. Processors get ``on_end`` only:
    their ``on_start`` would need the SDK's writable span, which only its tracer makes, so
    spans go through the SDK's own tracer (:class:`ApiSpanBuilder`) while any processor
    does something in ``on_start`` (a baggage processor adding attributes, say).
    """

    def __init__(self, tracer: SdkTracer, scope: InstrumentationScope) -> None:
        self._tracer = tracer
        self._sampler = tracer.sampler
        self._ids = tracer.id_generator
        self._processor = tracer.span_processor
        self._resource = tracer.resource
        # Kept private by the SDK; a tracer without them gets the defaults it would have.
        self._scope = getattr(tracer, "_instrumentation_scope", None) or scope
        self._limits: SpanLimits = getattr(tracer, "_span_limits", None) or SpanLimits()
        self._enabled = getattr(tracer, "_is_enabled", lambda: True)
        self._same_for_siblings = _same_answer_for_siblings(tracer.sampler)
        #: For spans while a processor wants ``on_start``: the SDK's own spans.
        self._api = ApiSpanBuilder(tracer)
        self._checked_processors: object = _UNCHECKED
        self._start_ignored = False
        limits = self._limits
        # True when no limit can touch the plugin's own event and link attributes (a few
        # short values each): they are then used as they are, unchecked.
        self._roomy = (
            limits.max_attribute_length is None
            and limits.max_span_attribute_length is None
            and all(
                count is None or count >= _FEW
                for count in (
                    limits.max_span_attributes,
                    limits.max_event_attributes,
                    limits.max_link_attributes,
                )
            )
        )

    def start(
        self,
        name: str,
        parent: Context | None,
        start_ns: int,
        parent_span: PendingSpan | None = None,
    ) -> PendingSpan:
        if not self._processors_ignore_start():
            return self._api.start(name, parent, start_ns, parent_span)
        if parent_span is not None:
            current = parent_span.context
        else:
            current = trace.get_current_span(parent).get_span_context()
        if not self._enabled():  # a tracer switched off by the SDK's configurator
            return PendingSpan(name, current, None, False, start_ns)
        parent_context: SpanContext | None = current
        if current.is_valid:
            trace_id = current.trace_id
            random_trace_id = current.trace_flags.random_trace_id
        else:
            parent_context, trace_id = None, self._ids.generate_trace_id()
            random_trace_id = self._ids.is_trace_id_random()
        answer = parent_span.child_sampling if parent_span is not None else None
        if answer is None:
            result = self._sampler.should_sample(parent, trace_id, name, SpanKind.INTERNAL)
            flags = TraceFlags.SAMPLED if result.decision.is_sampled() else TraceFlags.DEFAULT
            if random_trace_id:
                flags |= TraceFlags.RANDOM_TRACE_ID
            answer = (result, TraceFlags(flags))
            if parent_span is not None and self._same_for_siblings:
                parent_span.child_sampling = answer
        result, trace_flags = answer
        context = SpanContext(
            trace_id,
            self._ids.generate_span_id(),
            is_remote=False,
            trace_flags=trace_flags,
            trace_state=result.trace_state,
        )
        return PendingSpan(
            name,
            context,
            parent_context,
            result.decision.is_recording(),
            start_ns,
            result.attributes,
        )

    def end(
        self,
        span: PendingSpan,
        attributes: Mapping[str, Any],
        events: Sequence[EventRecord],
        links: Sequence[tuple[SpanContext, Mapping[str, Any]]],
        status: Status,
        end_ns: int,
    ) -> None:
        if span.live is not None:  # started while a processor wanted on_start
            self._api.end(span, attributes, events, links, status, end_ns)
            return
        limits = self._limits
        if span.attributes:
            attributes = {**span.attributes, **attributes}
        made_events: Sequence[Event]
        made_links: Sequence[Link]
        if self._roomy and len(attributes) <= _FEW:
            made_events = [Event(name, values, timestamp) for name, values, timestamp in events]
            made_links = [Link(context, values) for context, values in links]
        else:
            length = limits.max_attribute_length
            span_length = limits.max_span_attribute_length
            attributes = _bounded(attributes, limits.max_span_attributes, span_length)
            made_events = [
                Event(name, _bounded(values, limits.max_event_attributes, length), timestamp)
                for name, values, timestamp in events
            ]
            made_links = [
                Link(context, _bounded(values, limits.max_link_attributes, length))
                for context, values in links
            ]
        self._processor.on_end(
            ReadableSpan(
                name=span.name,
                context=span.context,
                parent=span.parent,
                resource=self._resource,
                attributes=attributes,
                events=_at_most(made_events, limits.max_events),
                links=_at_most(made_links, limits.max_links),
                kind=SpanKind.INTERNAL,
                status=status,
                start_time=span.start_ns,
                end_time=end_ns,
                instrumentation_info=self._tracer.instrumentation_info,
                instrumentation_scope=self._scope,
            )
        )

    def _processors_ignore_start(self) -> bool:
        """Whether no span processor of the provider does anything in ``on_start``; checked
        again whenever a processor was added (the SDK then replaces its tuple of them)."""
        processors = getattr(self._processor, "_span_processors", None)
        if processors is not self._checked_processors:
            self._checked_processors = processors
            self._start_ignored = _ignores_start(self._processor)
        return self._start_ignored


_UNCHECKED = object()

#: More attributes than any event, link or span of the plugin has (sampler's aside).
_FEW = 16

#: The SDK's samplers whose answer depends on nothing but the parent and the trace id.
_BY_PARENT_AND_TRACE = (StaticSampler, TraceIdRatioBased)


def _same_answer_for_siblings(sampler: Sampler) -> bool:
    """Whether ``sampler`` answers alike for every child of one local parent span.

    True for the SDK's own samplers: their answer depends only on the parent and the
    trace id, which siblings share (not on the span's name, like a user's sampler may).
    Then an activation span reuses the answer its job's first activation got.
    """
    if type(sampler) in _BY_PARENT_AND_TRACE:
        return True
    if type(sampler) not in (ParentBased, ParentBasedTraceIdRatio):
        return False
    # Which delegates a local parent leads to; the SDK keeps them private, so a ParentBased
    # without them is asked every time.
    delegates = [getattr(sampler, name, None) for name in _LOCAL_PARENT_DELEGATES]
    return all(type(delegate) in _BY_PARENT_AND_TRACE for delegate in delegates)


_LOCAL_PARENT_DELEGATES = ("_local_parent_sampled", "_local_parent_not_sampled")


def _bounded(
    attributes: Mapping[str, Any], count: int | None, length: int | None
) -> Mapping[str, Any]:
    """The attributes as the SDK's span would keep them: as they are while within limits."""
    if length is None and (count is None or len(attributes) <= count):
        return attributes
    return BoundedAttributes(count, attributes, immutable=True, max_value_len=length)


def _at_most(items: Sequence[Any], limit: int | None) -> Sequence[Any]:
    """Like the SDK's span: past the limit the oldest are dropped (and counted)."""
    if limit is None or len(items) <= limit:
        return items
    return BoundedList.from_seq(limit, items)
