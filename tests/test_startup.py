"""Start-up: importing the kernel loads nothing optional, and the lazy logger stays silent.

Each check runs in a fresh interpreter, since this test session has long imported
everything.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

#: Modules that cost start-up time and are needed only by some programs.
OPTIONAL = [
    "loguru",
    "asyncio",
    "multiprocessing",
    "concurrent.futures",
    "importlib_metadata",
    "tomllib",
    "yaml",
    "routilux_kernel.executors.remote",
    "routilux_kernel.executors.process.pool",
    "routilux_kernel.flowfiles",
    "routilux_kernel.cli",
]


def run_python(code: str, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, **env},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_import_loads_nothing_optional() -> None:
    out = run_python(
        f"""
        import json, sys
        import routilux_kernel
        print(json.dumps([m for m in {OPTIONAL!r} if m in sys.modules]))
        """
    )
    assert json.loads(out) == []


def test_lazy_exports_still_import() -> None:
    out = run_python(
        """
        from routilux_kernel import WorkerCrashedError, ExecutorError
        print(issubclass(WorkerCrashedError, ExecutorError))
        """
    )
    assert out.strip() == "True"


def test_help_loads_no_process_executor_yaml_or_logging() -> None:
    out = run_python(
        """
        import contextlib, io, json, sys
        from routilux_kernel.cli import main
        with contextlib.redirect_stdout(io.StringIO()) as text:
            code = main(["--help"])
        wanted = ["loguru", "asyncio", "multiprocessing", "yaml",
                  "routilux_kernel.executors.process.pool"]
        print(json.dumps([code, "run" in text.getvalue(),
                          [m for m in wanted if m in sys.modules]]))
        """,
        ROUTILUX_LOAD_PLUGINS="",
    )
    assert json.loads(out) == [0, True, []]


#: What ``routilux --help`` must not import with every plugin of plugins/ installed: the
#: std routines' heavy dependencies (loaded when a routine runs), the web stack (loaded when
#: a dashboard is served), the PostgreSQL driver and the OpenTelemetry SDK, the commands
#: themselves (only their options, cli/command_arguments.py), and loguru (loaded by the
#: first record).
NOT_FOR_HELP = [
    "httpx",
    "pydantic",
    "jsonschema",
    "yaml",
    "starlette",
    "uvicorn",
    "jinja2",
    "psycopg",
    "opentelemetry.sdk",
    "loguru",
    "routilux_kernel.flowfiles",
    "routilux_kernel.cli.run_command",
    "routilux_kernel.cli.jobs_command",
    "routilux_kernel.executors.remote",
]


def test_help_with_every_plugin_installed_imports_only_what_it_shows() -> None:
    out = run_python(
        f"""
        import contextlib, io, json, sys
        from routilux_kernel.cli import main
        from routilux_kernel.hooks.installed import get_plugin_manager
        with contextlib.redirect_stdout(io.StringIO()) as text:
            code = main(["--help"])
        loaded = [m for m in {NOT_FOR_HELP!r} if m in sys.modules]
        plugins = [name for name, _ in get_plugin_manager().list_name_plugin()]
        print(json.dumps([code, "validate" in text.getvalue(), loaded, plugins]))
        """,
        ROUTILUX_LOAD_PLUGINS="std,dask,web,postgres,otel",
    )
    code, lists_commands, loaded, plugins = json.loads(out)
    assert (code, lists_commands, loaded) == (0, True, [])
    assert {"std", "dask", "web", "postgres", "otel"} <= set(plugins)  # all really loaded


# A job whose routine_started hook raises: the kernel logs an error record about it.
FAULTY_JOB = """
class Faulty:
    @hookimpl
    def routine_started(self, job_state, routine_id):
        raise RuntimeError("broken observer")

routine = Routine()
routine.add_slot("trigger")
routine.set_logic(lambda slot_data, message, job_state: None)
flow = Flow("f")
flow.add_routine(routine, "only")
"""

LOGGING_SCRIPT = (
    """
import json
import routilux_kernel
from routilux_kernel import Flow, Routine, Runtime, hookimpl
{before}
from loguru import logger
"""
    + FAULTY_JOB
    + """
records = []
logger.remove()
logger.add(lambda message: records.append(message.record["name"]), level="DEBUG")
{enable}
with Runtime(plugins=[Faulty()]) as runtime:
    print(json.dumps([str(runtime.run(flow, timeout=10).status), records]))
"""
)


@pytest.mark.parametrize(
    ("before", "enable", "expect_records"),
    [
        ("", "", False),  # loguru loaded after the kernel: still silent by default
        ("from loguru import logger as _early", "", False),  # loguru loaded first
        ("", 'logger.enable("routilux_kernel")', True),  # the application's choice holds
        ("", "routilux_kernel.configure_logging('DEBUG', sink=lambda m: None)", True),
    ],
    ids=["late_loguru", "early_loguru", "app_enables", "configure_logging"],
)
def test_library_is_silent_until_the_application_enables_it(
    before: str, enable: str, expect_records: bool
) -> None:
    out = run_python(LOGGING_SCRIPT.format(before=before, enable=enable))
    status, records = json.loads(out)
    assert status == "completed"
    kernel_records = [name for name in records if name.startswith("routilux_kernel")]
    assert kernel_records == (["routilux_kernel.hooks.calls"] if expect_records else [])


def test_records_nobody_can_hear_do_not_import_loguru() -> None:
    # A disabled plugin is logged at INFO and a raising observer at ERROR: with loguru never
    # imported by the application, nothing could show them, so loguru is not loaded for them.
    out = run_python(
        "import json, sys\nfrom routilux_kernel import Flow, Routine, Runtime, hookimpl\n"
        + FAULTY_JOB
        + "with Runtime(plugins=[Faulty()]) as runtime:\n"
        "    status = str(runtime.run(flow, timeout=10).status)\n"
        'print(json.dumps([status, "loguru" in sys.modules]))\n',
        ROUTILUX_DISABLE_PLUGINS="otel",
    )
    assert json.loads(out) == ["completed", False]
