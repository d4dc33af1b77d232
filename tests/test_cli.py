"""The ``routilux`` command line, run for real (subprocess) and in-process (main(argv))."""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from routilux_kernel import hookimpl
from routilux_kernel.cli import main
from routilux_kernel.cli.progress import ProgressDisplay
from routilux_kernel.hooks.manager import create_plugin_manager
from routilux_kernel.hooks.registry import registries_for

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "flows"

ROUTINES_SOURCE = """
import threading
import time
from routilux_kernel import Routine

class Start(Routine):
    def __init__(self):
        super().__init__()
        self.add_slot("trigger")
        self.add_event("out", ["params"])

    def logic(self, slot_data, message, job_state):
        for item in slot_data["trigger"]:
            print("start says hello")
            job_state.shared_log.append({k: [v, type(v).__name__] for k, v in item.items()})
            self.emit("out", params=item)

class Boom(Routine):
    def __init__(self):
        super().__init__()
        self.add_slot("input")

    def logic(self, slot_data, message, job_state):
        raise ValueError("the boom routine exploded")

class Sleepy(Routine):
    def __init__(self):
        super().__init__()
        self.set_config(seconds=0.5)
        self.add_slot("trigger")

    def logic(self, slot_data, message, job_state):
        time.sleep(self.get_config("seconds"))

class HoldsALock(Routine):
    def __init__(self):
        super().__init__()
        self.guard = threading.Lock()
        self.add_slot("trigger")

    def logic(self, slot_data, message, job_state):
        pass
"""


@pytest.fixture
def mod(tmp_path: Path) -> str:
    name = f"cli_routines_{uuid.uuid4().hex[:10]}"
    (tmp_path / f"{name}.py").write_text(ROUTINES_SOURCE)
    return name


def write_flow(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def routilux(
    *args: Any, cwd: Path | None = None, **options: Any
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m routilux_kernel.cli`` as a user would (no TTY: output is captured)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("ROUTILUX_EXECUTOR", None)
    return subprocess.run(
        [sys.executable, "-m", "routilux_kernel.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd or REPO,
        env=env,
        timeout=60,
        **options,
    )


@pytest.fixture
def good_flow(tmp_path: Path, mod: str) -> Path:
    return write_flow(
        tmp_path,
        "good.yaml",
        f"""
        flow_id: good
        params: {{greeting: hi}}
        routines:
          start: {{use: "{mod}:Start"}}
        connections: []
    """,
    )


@pytest.fixture
def failing_flow(tmp_path: Path, mod: str) -> Path:
    return write_flow(
        tmp_path,
        "failing.json",
        json.dumps(
            {
                "flow_id": "failing",
                "routines": {"start": {"use": f"{mod}:Start"}, "boom": {"use": f"{mod}:Boom"}},
                "connections": ["start.out -> boom.input"],
            }
        ),
    )


# -- run ----------------------------------------------------------------------------------


def test_run_example_shows_output_and_summary_without_progress_when_piped() -> None:
    result = routilux("run", EXAMPLES / "word_count.yaml", "--jobs", "3")
    assert result.returncode == 0, result.stderr
    reports = [line for line in result.stdout.splitlines() if "most frequent:" in line]
    assert len(reports) == 3
    assert "74 words" in reports[0]
    assert result.stdout.count(" completed in ") == 3
    assert "flow 'word_count': 3 jobs, 3 completed, 0 failed" in result.stdout
    assert "\r" not in result.stderr and "jobs done" not in result.stderr


def test_run_json_prints_only_json_on_stdout(good_flow: Path) -> None:
    result = routilux(
        "run",
        good_flow,
        "--jobs",
        "2",
        "--json",
        "--param",
        "n=3",
        "--param",
        "tags=[1, 2]",
        "--param",
        "name=plain text",
    )
    assert result.returncode == 0, result.stderr
    jobs = json.loads(result.stdout)  # nothing but JSON: the routine's print went to stderr
    assert "start says hello" in result.stderr
    assert [job["status"] for job in jobs] == ["completed", "completed"]
    assert len({job["job_id"] for job in jobs}) == 2
    assert jobs[0]["shared_log"] == [
        {
            "greeting": ["hi", "str"],
            "n": [3, "int"],
            "tags": [[1, 2], "list"],
            "name": ["plain text", "str"],
        }
    ]
    assert jobs[0]["duration"] >= 0 and jobs[0]["error"] is None


def test_a_failed_job_exits_1_and_names_the_routine(failing_flow: Path) -> None:
    result = routilux("run", failing_flow, "--jobs", "2")
    assert result.returncode == 1
    assert (
        result.stdout.count("error in routine 'boom': ValueError: the boom routine exploded") == 2
    )
    assert "2 jobs, 0 completed, 2 failed" in result.stdout
    as_json = routilux("run", failing_flow, "--json")
    assert as_json.returncode == 1
    [job] = json.loads(as_json.stdout)
    assert job["status"] == "failed" and job["error_routine_id"] == "boom"
    assert job["error"] == "ValueError: the boom routine exploded"


def test_max_workers_overrides_the_flow_file() -> None:
    # The file allows 5 workers; with one, the three 0.1 s fetchers of a job run one by one.
    result = routilux("run", EXAMPLES / "fan_out_fan_in.yaml", "--max-workers", "1", "--json")
    assert result.returncode == 0, result.stderr
    [job] = json.loads(result.stdout)
    assert job["duration"] >= 0.29
    assert sorted(job["shared_log"]) == ["Source0", "Source1", "Source2"]


def test_timeout_fails_the_job(tmp_path: Path, mod: str) -> None:
    path = write_flow(
        tmp_path,
        "slow.yaml",
        f"""
        routines:
          nap: {{use: "{mod}:Sleepy", config: {{seconds: 0.6}}}}
    """,
    )
    result = routilux("run", path, "--timeout", "0.1")
    assert result.returncode == 1
    assert "error in the job: JobTimeoutError" in result.stdout and "timed out" in result.stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--param", "novalue"], "--param 'novalue': expected key=value"),
        (["--executor", "warp"], "--executor: unknown executor 'warp'; registered executors:"),
        (["--jobs", "0"], "--jobs: expected a whole number >= 1"),
    ],
)
def test_bad_command_line_input_exits_2(good_flow: Path, extra: list[str], message: str) -> None:
    result = routilux("run", good_flow, *extra)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_bad_flow_file_exits_2_listing_every_problem(tmp_path: Path, mod: str) -> None:
    path = write_flow(
        tmp_path,
        "bad.yaml",
        f"""
        routines:
          start: {{use: "{mod}:Start", config: [1, 2]}}
          ghost: {{use: not_registered}}
        connections: ["start.out -> nobody.in"]
    """,
    )
    result = routilux("run", path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert (
        f"{path}: routines.start.config: expected a mapping of config keys to values, "
        "got list [1, 2]" in lines
    )
    assert any(line.startswith(f"{path}: routines.ghost.use: unknown routine") for line in lines)
    assert any(
        line.startswith(f"{path}: connections[0]: unknown routine 'nobody'") for line in lines
    )
    assert lines[-1] == "routilux run: 3 problems; nothing was run"


def test_verbose_enables_kernel_logs(good_flow: Path) -> None:
    quiet = routilux("run", good_flow)
    info = routilux("run", good_flow, "-v")
    debug = routilux("-vv", "run", good_flow)
    assert "INFO" not in quiet.stderr and "DEBUG" not in quiet.stderr
    assert "INFO" in info.stderr and "running 1 job(s) of flow 'good'" in info.stderr
    assert "DEBUG" not in info.stderr
    assert "DEBUG" in debug.stderr and "finished: completed" in debug.stderr


# -- progress display ---------------------------------------------------------------------


def test_progress_line_on_a_terminal(tmp_path: Path, mod: str) -> None:
    path = write_flow(
        tmp_path,
        "nap.yaml",
        f"""
        routines:
          nap: {{use: "{mod}:Sleepy", config: {{seconds: 0.3}}}}
    """,
    )
    controller, terminal = pty.openpty()
    chunks: list[bytes] = []

    def read_terminal() -> None:
        while True:
            try:
                data = os.read(controller, 4096)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.run(
        [sys.executable, "-m", "routilux_kernel.cli", "run", str(path), "--jobs", "3"],
        stdout=subprocess.PIPE,
        stderr=terminal,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
    )
    os.close(terminal)
    reader.join(5)
    os.close(controller)
    shown = b"".join(chunks).decode()
    assert process.returncode == 0
    assert "\r\x1b[K" in shown
    assert "0/3 jobs done" in shown  # drawn while the jobs slept
    assert "3/3 jobs done, 0 failed, 0 running" in shown
    assert "jobs done" not in process.stdout


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_renderer() -> None:
    now = [100.0]
    terminal = FakeTerminal()
    display = ProgressDisplay(terminal, 4, "routilux run f", clock=lambda: now[0])
    assert display.enabled
    now[0] = 101.25
    display.update(1, 0)
    display.update(3, 1)
    display.finish(4, 1)
    assert terminal.getvalue() == (
        "\r\x1b[Kroutilux run f: 1/4 jobs done, 0 failed, 3 running, 1.2s"
        "\r\x1b[Kroutilux run f: 3/4 jobs done, 1 failed, 1 running, 1.2s"
        "\r\x1b[Kroutilux run f: 4/4 jobs done, 1 failed, 0 running, 1.2s\n"
    )
    piped = io.StringIO()
    silent = ProgressDisplay(piped, 4, "x")
    silent.update(1, 0)
    silent.finish(4, 0)
    assert not silent.enabled and piped.getvalue() == ""


def test_prints_on_the_same_terminal_clear_the_progress_line() -> None:
    terminal = FakeTerminal()
    display = ProgressDisplay(terminal, 2, "p", clock=lambda: 0.0)
    display.update(0, 0)
    with display.kept_clear_of(terminal) as out:
        out.write("routine output\n")
    assert terminal.getvalue().endswith("running, 0.0s\r\x1b[Kroutine output\n")


# -- validate -----------------------------------------------------------------------------


def test_validate_valid_and_invalid(tmp_path: Path, good_flow: Path, mod: str) -> None:
    ok = routilux("validate", good_flow)
    assert ok.returncode == 0
    assert ok.stdout.strip() == (
        f"{good_flow}: valid: flow 'good', 1 routine, 0 connections, entry start, executor thread"
    )
    bad = write_flow(
        tmp_path,
        "bad.json",
        json.dumps(
            {
                "flow_id": 7,
                "routines": {"start": {"use": f"{mod}:Start", "executor": "warp"}},
                "connections": ["start.nope -> start.trigger"],
                "entry": ["missing"],
            }
        ),
    )
    result = routilux("validate", bad)
    assert result.returncode == 2
    paths = [line.split(": ")[1] for line in result.stderr.splitlines()[:-1]]
    assert paths == ["flow_id", "routines.start.executor", "connections[0]", "entry[0]"]
    assert result.stderr.splitlines()[-1] == f"routilux validate: {bad} is invalid: 4 problems"


def test_validate_checks_the_executor_options(tmp_path: Path, mod: str) -> None:
    path = write_flow(
        tmp_path,
        "opts.yaml",
        f"""
        routines:
          start: {{use: "{mod}:Start"}}
        executor: {{name: thread, options: {{max_workers: 0}}}}
    """,
    )
    result = routilux("validate", path)
    assert result.returncode == 2
    assert (
        f"{path}: executor.options: executor 'thread' refuses {{'max_workers': 0}}" in result.stderr
    )
    assert "max_workers must be an int >= 1" in result.stderr


def test_validate_checks_picklability_for_an_executor_that_pickles(
    tmp_path: Path, mod: str
) -> None:
    if "process" not in registries_for(create_plugin_manager()).executors:
        pytest.skip("the process executor is not registered in this installation")
    path = write_flow(
        tmp_path,
        "locked.yaml",
        f"""
        routines:
          locked: {{use: "{mod}:HoldsALock"}}
    """,
    )
    assert routilux("validate", path).returncode == 0  # threads do not pickle
    result = routilux("validate", path, "--executor", "process")
    assert result.returncode == 2
    assert f"{path}: routines.locked: routine 'locked':" in result.stderr
    assert "guard" in result.stderr and "(executor 'process' pickles routines)" in result.stderr


def test_every_example_flow_validates() -> None:
    registered = registries_for(create_plugin_manager()).executors
    for path in sorted(EXAMPLES.glob("*.*[ln]")):  # .yaml, .yml, .json
        if "process" in path.read_text() and "process" not in registered:
            continue
        assert main(["validate", str(path)]) == 0, path


def test_process_example_runs() -> None:
    if "process" not in registries_for(create_plugin_manager()).executors:
        pytest.skip("the process executor is not registered in this installation")
    result = routilux("run", EXAMPLES / "primes_process.yaml", "--param", "limit=20000")
    assert result.returncode == 0, result.stderr
    assert "2262 primes below 20000" in result.stdout
    assert "process: primes_a, primes_b, primes_c" in result.stdout


# -- untrusted files ------------------------------------------------------------------------


def test_registered_only_refuses_imports_on_the_command_line_and_in_config(
    tmp_path: Path,
) -> None:
    name = f"untrusted_{uuid.uuid4().hex[:10]}"
    marker = tmp_path / "imported.txt"
    (tmp_path / f"{name}.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('side effect')\n"
        "from routilux_kernel import Routine\nclass Evil(Routine):\n    pass\n"
    )
    path = write_flow(tmp_path, "untrusted.yaml", f"routines:\n  evil: {{use: '{name}:Evil'}}\n")
    for command in ("run", "validate", "graph"):
        result = routilux(command, path, "--registered-only")
        assert result.returncode == 2
        assert "module:Class imports are switched off" in result.stderr
    (tmp_path / "routilux.toml").write_text("registered_only = true\n")
    result = routilux("run", path, cwd=tmp_path)
    assert result.returncode == 2 and "switched off" in result.stderr
    assert not marker.exists()
    (tmp_path / "routilux.toml").unlink()
    routilux("validate", path, cwd=tmp_path)  # imports allowed again: the side effect happens
    assert marker.exists()


# -- graph, routines, plugins, third-party commands ---------------------------------------


def test_graph_mermaid_and_dot(capsys: pytest.CaptureFixture[str]) -> None:
    flow = EXAMPLES / "fan_out_fan_in.yaml"
    assert main(["graph", str(flow)]) == 0
    mermaid = capsys.readouterr().out.splitlines()
    assert mermaid[0] == "graph LR"
    assert '    fetcher0["fetcher0<br/>DataFetcher"]' in mermaid
    assert "    fetcher2 -->|output → input| collector" in mermaid
    assert main(["graph", str(flow), "--format", "dot"]) == 0
    dot = capsys.readouterr().out.splitlines()
    assert dot[0] == 'digraph "fetch_flow" {' and dot[-1] == "}"
    assert '    "collector" [label="collector\\nResultCollector"];' in dot
    assert '    "fetcher1" -> "collector" [label="output → input"];' in dot
    assert main(["graph", str(flow), "--format", "png"]) == 2


class Greeter:
    """A routine that is fine, and one that cannot be created."""

    @hookimpl
    def register_routines(self, register: Any) -> None:
        from routilux_kernel import Routine

        class Greet(Routine):
            """Says hello to whoever triggers it."""

            def __init__(self) -> None:
                super().__init__()
                self.set_config(greeting="hello", loud=False)
                self.add_slot("trigger", max_queue_length=10)
                self.add_event("greeted", ["text", "who"])

        def broken() -> Routine:
            raise RuntimeError("needs an API key")

        register("greet", Greet)
        register("broken", broken)


def test_routines_lists_slots_events_and_config(capsys: pytest.CaptureFixture[str]) -> None:
    pm = create_plugin_manager(load_entry_points=False, plugins=[Greeter()])
    assert main(["routines"], plugin_manager=pm) == 0
    out = capsys.readouterr().out
    assert "greet  (" in out and "Says hello to whoever triggers it." in out
    assert "    slots:  trigger\n    events: greeted(text, who)\n" in out
    assert "    config: greeting='hello', loud=False" in out
    assert "broken  (" in out and "cannot be created: RuntimeError: needs an API key" in out
    assert main(["routines", "--json"], plugin_manager=pm) == 0
    listed = {entry["name"]: entry for entry in json.loads(capsys.readouterr().out)}
    assert listed["greet"]["slots"] == [
        {"name": "trigger", "max_queue_length": 10, "on_full": "raise"}
    ]
    assert listed["greet"]["events"] == [
        {"name": "greeted", "params": ["text", "who"], "optional": []}
    ]
    assert listed["greet"]["config"] == {"greeting": "hello", "loud": False}
    assert listed["broken"]["error"] == "RuntimeError: needs an API key"


def test_routines_without_any_registered(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["routines"], plugin_manager=create_plugin_manager(load_entry_points=False)) == 0
    assert "No routines are registered" in capsys.readouterr().out


def test_plugins_lists_builtin_plugins_and_their_registrations(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pm = create_plugin_manager(load_entry_points=False, plugins=[Greeter()])
    assert main(["plugins", "--json"], plugin_manager=pm) == 0
    report = json.loads(capsys.readouterr().out)
    by_name = {plugin["name"]: plugin for plugin in report["plugins"]}
    commands = by_name["routilux_kernel.cli.builtin_commands"]
    assert commands["builtin"] is True
    assert sorted(commands["registered"]["commands"]) == [
        "graph",
        "jobs",
        "plugins",
        "routines",
        "run",
        "validate",
    ]
    greeter = next(p for p in report["plugins"] if p["registered"]["routines"])
    assert sorted(greeter["registered"]["routines"]) == ["broken", "greet"]
    assert report["failures"] == []
    assert main(["plugins"], plugin_manager=pm) == 0
    text = capsys.readouterr().out
    assert "routilux_kernel.cli.builtin_commands  (built in)" in text
    [line] = [line for line in text.splitlines() if line.startswith("    commands: ")]
    assert sorted(line.split(": ")[1].split(", ")) == [
        "graph",
        "jobs",
        "plugins",
        "routines",
        "run",
        "validate",
    ]


class HelloCommand:
    @hookimpl
    def register_commands(self, register: Any) -> None:
        def add_arguments(parser: Any) -> None:
            parser.add_argument("--name", default="world")

        def run(args: Any) -> int:
            print(
                f"hello {args.name} ({len(registries_for(args.plugin_manager).commands)} commands)"
            )
            return 3

        register("hello", run, help="say hello", add_arguments=add_arguments)


def test_a_plugin_adds_a_command_like_the_builtins(capsys: pytest.CaptureFixture[str]) -> None:
    pm = create_plugin_manager(load_entry_points=False, plugins=[HelloCommand()])
    assert main(["hello", "--name", "plugin"], plugin_manager=pm) == 3
    assert capsys.readouterr().out == "hello plugin (7 commands)\n"
    assert main(["--help"], plugin_manager=pm) == 0
    assert "say hello" in capsys.readouterr().out


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    help_text = capsys.readouterr().err
    for command in ("run", "validate", "graph", "routines", "plugins"):
        assert command in help_text


class BrokenCommand:
    @hookimpl
    def register_commands(self, register: Any) -> None:
        def add_arguments(parser: Any) -> None:
            raise RuntimeError("bad parser")

        register("broken", lambda args: 0, help="never usable", add_arguments=add_arguments)


def test_a_command_with_broken_arguments_is_left_out(capsys: pytest.CaptureFixture[str]) -> None:
    pm = create_plugin_manager(load_entry_points=False, plugins=[BrokenCommand()])
    assert main(["--help"], plugin_manager=pm) == 0
    captured = capsys.readouterr()
    assert "never usable" not in captured.out
    assert (
        "command 'broken' of plugin" in captured.err and "RuntimeError: bad parser" in captured.err
    )
    assert main(["broken"], plugin_manager=pm) == 2
    assert main(["graph", str(EXAMPLES / "word_count.yaml")], plugin_manager=pm) == 0


def test_validate_names_an_unknown_executor_from_the_environment(tmp_path: Path) -> None:
    flow_file = Path(__file__).resolve().parent.parent / "examples" / "flows" / "word_count.yaml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTILUX_")}
    env["ROUTILUX_EXECUTOR"] = "warp"
    done = subprocess.run(
        [sys.executable, "-m", "routilux_kernel.cli", "validate", str(flow_file)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 2
    assert "environment variable ROUTILUX_EXECUTOR: unknown executor 'warp'" in done.stderr
    assert "1 problem" in done.stderr


def test_output_closed_early_is_not_a_failure(tmp_path: Path) -> None:
    reader = subprocess.Popen(["head", "-c", "1"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    done = subprocess.run(
        [sys.executable, "-m", "routilux_kernel.cli", "plugins", "--json"],
        stdout=reader.stdin,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert reader.stdin is not None
    reader.stdin.close()
    reader.wait(timeout=10)
    assert "BrokenPipeError" not in done.stderr
    assert done.returncode == 0, done.stderr


def test_every_installed_command_builds_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    # The installed distributions (std, web, ...) with their real entry points: a plugin whose
    # options fail to build is left out with a message on stderr; none may be.
    assert main(["--help"]) == 0
    out, err = capsys.readouterr()
    assert "left out" not in err and "could not add options" not in err, err
    assert "serve" in out and "run" in out
