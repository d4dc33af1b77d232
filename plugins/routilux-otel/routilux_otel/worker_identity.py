"""Which worker runs a remote activation, and the span the activation gets there.

The driver ships the activation span's W3C trace context with the activation (the
``remote_activation_context`` hook); in the worker, :func:`traced_in_worker` extracts it and
runs the logic inside a child span that names the worker, so the worker's spans (and any
the logic makes itself) land in the job's trace, exported by the worker's own providers.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from routilux_otel import attributes as names
from routilux_otel.errors import record_error

#: The key of routilux-otel's part of ``activation.context``.
CONTEXT_KEY = "routilux_otel"

PROPAGATOR = TraceContextTextMapPropagator()

_identity: dict[str, Any] | None = None


def remember_worker(worker: Any) -> None:
    """Keep what ``worker_setup`` says about this worker process (name, pid, address)."""
    global _identity
    identity: dict[str, Any] = {
        names.WORKER_EXECUTOR: str(getattr(worker, "executor", "")),
        names.WORKER_NAME: str(getattr(worker, "name", "")),
        names.WORKER_PID: int(getattr(worker, "pid", os.getpid())),
    }
    address = getattr(getattr(worker, "backend", None), "address", None)
    if address:
        identity[names.WORKER_ADDRESS] = str(address)
    _identity = identity


def carrier_for(context: otel_context.Context) -> dict[str, str]:
    """The ``traceparent`` (and ``tracestate``) of the current span of ``context``."""
    carrier: dict[str, str] = {}
    PROPAGATOR.inject(carrier, context=context)
    return carrier


def traced_in_worker(
    tracer: trace.Tracer, activation: Any, carrier: dict[str, str]
) -> Generator[None, Any, Any]:
    """The worker side of ``run_activation``: the logic runs in a child of the driver's span."""
    identity = _identity if _identity is not None else {names.WORKER_PID: os.getpid()}
    span = tracer.start_span(
        f"run {activation.routine_id}",
        context=PROPAGATOR.extract(carrier),
        attributes={
            **identity,
            names.JOB_ID: str(activation.job_state.job_id),
            names.ROUTINE_ID: activation.routine_id,
            names.ATTEMPT: activation.attempt + 1,
        },
    )
    token = otel_context.attach(trace.set_span_in_context(span))
    try:
        result = yield
    except BaseException as error:
        span.set_attribute(names.OUTCOME, names.OUTCOME_ERROR)
        record_error(span, error)
        raise
    else:
        span.set_attribute(names.OUTCOME, names.OUTCOME_OK)
        return result
    finally:
        otel_context.detach(token)
        span.end()
