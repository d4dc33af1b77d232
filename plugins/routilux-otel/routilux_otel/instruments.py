"""The metric instruments of one MeterProvider, and the queue-depth gauge's sampling."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

from routilux_otel import attributes as names

#: Reads the live slot queues: ``[(flow_id, {routine_id: {slot: depth}})]``.
QueueSource = Callable[[], list[tuple[str, dict[str, dict[str, int]]]]]


class Instruments:
    """Counters, the duration histogram and the queue-depth gauge, made from one provider."""

    def __init__(self, provider: MeterProvider, version: str, queues: QueueSource) -> None:
        meter = provider.get_meter(names.SCOPE, version)
        self.provider = provider
        self.jobs_started = meter.create_counter(
            names.JOBS_STARTED, unit="{job}", description="Jobs started, by flow"
        )
        self.jobs_finished = meter.create_counter(
            names.JOBS_FINISHED,
            unit="{job}",
            description="Jobs that reached completed, failed or cancelled, by flow and status",
        )
        self.activation_duration = meter.create_histogram(
            names.ACTIVATION_DURATION,
            unit="s",
            description="Time from an activation's start to its end, by routine and outcome",
        )
        self.retries = meter.create_counter(
            names.RETRIES,
            unit="{retry}",
            description="Activations the error strategy decided to run again, by routine",
        )
        self._queues = queues
        meter.create_observable_gauge(
            names.QUEUE_DEPTH,
            callbacks=[self._observe_queue_depths],
            unit="{item}",
            description="Items waiting in slots of running jobs, summed by flow, routine, slot",
        )

    def _observe_queue_depths(self, options: CallbackOptions) -> Iterable[Observation]:
        totals: dict[tuple[str, str, str], int] = {}
        for flow_id, depths in self._queues():
            for routine_id, slots in depths.items():
                for slot, depth in slots.items():
                    key = (flow_id, routine_id, slot)
                    totals[key] = totals.get(key, 0) + depth
        return [
            Observation(
                depth, {names.FLOW_ID: flow_id, names.ROUTINE_ID: routine_id, names.SLOT: slot}
            )
            for (flow_id, routine_id, slot), depth in totals.items()
        ]
