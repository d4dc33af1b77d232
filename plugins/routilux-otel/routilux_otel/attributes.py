"""The names routilux-otel gives its spans, span attributes, events and metrics.

docs/observability.md explains each one; tests and dashboards should use these constants.
"""

from __future__ import annotations

#: The instrumentation scope of every span and instrument.
SCOPE = "routilux_otel"

# -- span attributes ---------------------------------------------------------------------
FLOW_ID = "routilux.flow.id"
JOB_ID = "routilux.job.id"
JOB_STATUS = "routilux.job.status"
JOB_ERROR_ROUTINE = "routilux.job.error_routine_id"
JOB_ENTRY_PARAMS_SIZE = "routilux.job.entry_params.size"
ROUTINE_ID = "routilux.routine.id"
ATTEMPT = "routilux.activation.attempt"
OUTCOME = "routilux.activation.outcome"
EVENT_NAME = "routilux.event.name"
EVENT_SIZE = "routilux.event.size"
SLOT = "routilux.slot"
LINKED_ITEMS = "routilux.slot.items"
WORKER_EXECUTOR = "routilux.worker.executor"
WORKER_NAME = "routilux.worker.name"
WORKER_PID = "process.pid"
WORKER_ADDRESS = "routilux.worker.address"

# -- span events -------------------------------------------------------------------------
EMIT_EVENT = "emit"

# -- outcomes ----------------------------------------------------------------------------
OUTCOME_OK = "ok"
OUTCOME_ERROR = "error"

# -- metrics -----------------------------------------------------------------------------
JOBS_STARTED = "routilux.jobs.started"
JOBS_FINISHED = "routilux.jobs.finished"
ACTIVATION_DURATION = "routilux.activation.duration"
RETRIES = "routilux.activation.retries"
QUEUE_DEPTH = "routilux.slot.queue_depth"
