"""Metric values after real runs: jobs by status, activation durations, retries."""

from __future__ import annotations

from otel_flows import fan_out_join
from routilux_otel import attributes as names

from routilux_kernel import Flow, Routine

WAIT = 30.0


class Boom(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.add_slot("trigger")

    def logic(self, slot_data, policy_message, job_state) -> None:
        raise ValueError("boom")


def test_jobs_activations_and_retries_are_counted(telemetry, attrs) -> None:
    failing = Flow("metrics-fails")
    failing.add_routine(Boom(), "boom")
    runtime = telemetry.runtime(thread_pool_size=2)
    for n in range(3):
        runtime.run(fan_out_join("metrics-ok"), {"n": n}, timeout=WAIT)
    runtime.run(failing, {}, timeout=WAIT)
    points = telemetry.metric_points()

    def value(metric, **kw):
        return points[(metric, attrs(**kw))].value

    assert value(names.JOBS_STARTED, routilux_flow_id="metrics-ok") == 3
    assert value(names.JOBS_STARTED, routilux_flow_id="metrics-fails") == 1
    ok = {"routilux_flow_id": "metrics-ok", "routilux_job_status": "completed"}
    assert value(names.JOBS_FINISHED, **ok) == 3
    failed = {"routilux_flow_id": "metrics-fails", "routilux_job_status": "failed"}
    assert value(names.JOBS_FINISHED, **failed) == 1
    assert value(names.RETRIES, routilux_flow_id="metrics-ok", routilux_routine_id="left") == 3
    assert not [
        key
        for key in points
        if key[0] == names.RETRIES and ("routilux.routine.id", "boom") in key[1]
    ]

    durations = {
        (dict(key[1])[names.ROUTINE_ID], dict(key[1])[names.OUTCOME]): point
        for key, point in points.items()
        if key[0] == names.ACTIVATION_DURATION
    }
    counts = {key: point.count for key, point in durations.items()}
    assert counts == {
        ("source", "ok"): 3,
        ("left", "error"): 3,
        ("left", "ok"): 3,
        ("right", "ok"): 3,
        ("join", "ok"): 3,
        ("boom", "error"): 1,
    }
    assert all(0 < point.sum < WAIT for point in durations.values())
