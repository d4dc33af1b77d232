"""The installed distribution: found by its entry point, configured by OTEL_*, switchable off.

Each case runs a real program in a fresh interpreter, so the global OpenTelemetry
providers start unset, as in a user's process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

PROGRAM = textwrap.dedent(
    """
    import json, sys
    from routilux_kernel import Flow, Routine, Runtime
    from routilux_kernel.hooks.installed import describe_plugins

    class Hello(Routine):
        def __init__(self):
            super().__init__()
            self.add_slot("trigger")
            self.add_event("out", ["x"])
        def logic(self, slot_data, policy_message, job_state):
            self.emit("out", x=1)

    flow = Flow("installed-flow")
    flow.add_routine(Hello(), "hello")
    if sys.argv[1] == "app-provider":
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
    with Runtime(thread_pool_size=1) as runtime:
        state = runtime.run(flow, {}, timeout=30)
    plugins = sorted(p["name"] for p in describe_plugins() if not p["builtin"])
    otel_hooks = [p["hooks"] for p in describe_plugins() if p["name"] == "otel"]
    names = []
    if sys.argv[1] == "app-provider":
        names = sorted(span.name for span in exporter.get_finished_spans())
    result = {
        "status": str(state.status),
        "plugins": plugins,
        "spans": names,
        "otel_imported": "opentelemetry.trace" in sys.modules,
    }
    print("RESULT " + json.dumps({**result, "otel_hooks": otel_hooks}))
    """
)


def run_program(mode: str, **env: str) -> tuple[dict, list[dict], str]:
    """Run PROGRAM; return its RESULT line, the console-exported spans, and stderr."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ROUTILUX_"))}
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, mode],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    before, _, result = done.stdout.partition("RESULT ")
    result_line, _, after = result.partition("\n")
    spans = []
    decoder = json.JSONDecoder()
    text = (before + after).strip()  # the console exporter prints at exit, after RESULT
    while text:
        span, end = decoder.raw_decode(text)
        spans.append(span)
        text = text[end:].strip()
    return json.loads(result_line), spans, done.stderr


def test_installed_plugin_exports_through_the_console_exporter_named_by_otel_env() -> None:
    result, spans, _ = run_program(
        "env",
        OTEL_TRACES_EXPORTER="console",
        OTEL_METRICS_EXPORTER="none",
        OTEL_SERVICE_NAME="otel-test-service",
    )
    assert result["status"] == "completed"
    assert "otel" in result["plugins"]
    by_name = {span["name"]: span for span in spans}
    assert sorted(by_name) == ["activation hello", "job installed-flow"]
    job, activation = by_name["job installed-flow"], by_name["activation hello"]
    assert activation["parent_id"] == job["context"]["span_id"]
    assert job["attributes"]["routilux.job.status"] == "completed"
    assert [e["name"] for e in activation["events"]] == ["emit"]
    assert job["resource"]["attributes"]["service.name"] == "otel-test-service"


def test_disabled_by_routilux_disable_plugins() -> None:
    result, spans, _ = run_program(
        "env",
        OTEL_TRACES_EXPORTER="console",
        OTEL_METRICS_EXPORTER="none",
        ROUTILUX_DISABLE_PLUGINS="otel",
    )
    assert result["status"] == "completed"
    assert "otel" not in result["plugins"]
    assert spans == []


def test_a_provider_the_application_installed_is_used_and_otel_env_ignored() -> None:
    result, spans, _ = run_program(
        "app-provider", OTEL_TRACES_EXPORTER="console", OTEL_METRICS_EXPORTER="none"
    )
    assert result["spans"] == ["activation hello", "job installed-flow"]
    assert spans == []  # nothing went to the console exporter of OTEL_TRACES_EXPORTER


@pytest.mark.parametrize("variable", ["OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER"])
def test_an_exporter_that_is_not_installed_is_named_in_a_warning(variable: str) -> None:
    other = (
        "OTEL_METRICS_EXPORTER" if variable == "OTEL_TRACES_EXPORTER" else "OTEL_TRACES_EXPORTER"
    )
    result, spans, stderr = run_program("env", **{variable: "zipkin-nowhere", other: "none"})
    assert result["status"] == "completed" and spans == []
    assert f"{variable}='zipkin-nowhere' names no installed exporter" in stderr
    assert "installed: console" in stderr


@pytest.mark.parametrize(
    "env",
    [
        {},  # the default exporter, otlp (gRPC), is not installed: nothing would be exported
        {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"},
        {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "console"},
    ],
    ids=["no-exporter-installed", "exporters-none", "sdk-disabled"],
)
def test_installed_but_exporting_nothing_registers_no_hook(env: dict[str, str]) -> None:
    result, spans, _ = run_program("env", **env)
    assert result["status"] == "completed"
    assert "otel" in result["plugins"]
    assert result["otel_hooks"] == [[]]  # dormant: the kernel skips every lifecycle hook
    assert spans == []
    assert result["otel_imported"] is False  # decided without loading OpenTelemetry


def test_a_provider_class_named_by_the_environment_is_asked() -> None:
    # OTEL_PYTHON_TRACER_PROVIDER makes the API build that provider: no quick dormancy.
    result, _, _ = run_program(
        "env",
        OTEL_PYTHON_TRACER_PROVIDER="sdk_tracer_provider",
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
    )
    assert result["status"] == "completed"
    assert result["otel_imported"] is True


def test_exporting_registers_the_tracing_hooks() -> None:
    result, _, _ = run_program("env", OTEL_TRACES_EXPORTER="console", OTEL_METRICS_EXPORTER="none")
    (hooks,) = result["otel_hooks"]
    # routine_started is left to run_activation (in process) and remote_activation_context.
    tracing = {"job_started", "routine_finished", "run_activation", "remote_activation_context"}
    assert tracing <= set(hooks)
    assert "routine_started" not in hooks
