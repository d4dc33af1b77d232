"""Installed plugins are found through the ``routilux`` entry point group.

The distributions in tests/plugins/ are pip-installed (once per module) into a private
directory, and every check runs in a subprocess whose PYTHONPATH is that directory: only
that subprocess sees their entry points, and the user code in it never imports them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

PLUGIN_SOURCES = Path(__file__).parent / "plugins"
SAMPLE = "routilux-sample-plugin"
BROKEN = "routilux-broken-plugin"
BAD_HOOKS = "routilux-bad-hooks-plugin"
OURS = {SAMPLE, BROKEN, BAD_HOOKS}


def _can_build_without_isolation() -> bool:
    """setuptools builds wheels here without downloading anything (>= 70.1, or with wheel)."""
    try:
        version = metadata.version("setuptools")
    except metadata.PackageNotFoundError:
        return False
    if importlib.util.find_spec("wheel") is not None:
        return True
    major, minor = (int(part) for part in re.findall(r"\d+", version)[:2])
    return (major, minor) >= (70, 1)


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the three sample distributions, installed by pip."""
    root = tmp_path_factory.mktemp("plugin-dists")
    sources = []
    for name in sorted(OURS):
        # Built from a copy: an in-tree build would leave build/ and *.egg-info behind.
        copy = root / "src" / name
        shutil.copytree(
            PLUGIN_SOURCES / name,
            copy,
            ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"),
        )
        sources.append(str(copy))
    site = root / "site"
    command = [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target"]
    command.append(str(site))
    if _can_build_without_isolation():
        command.append("--no-build-isolation")
    done = subprocess.run(command + sources, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"pip install failed:\n{done.stdout}\n{done.stderr}"
    return site


def run_python(site: Path, code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter that sees the installed sample distributions."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ROUTILUX_")}
    environ["PYTHONPATH"] = str(site)
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=environ,
        cwd=site.parent,  # no routilux.toml up from here
        capture_output=True,
        text=True,
        timeout=60,
    )


def result_of(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, f"subprocess failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])


# What a user writes: no import of any plugin, only names.
USER_PROGRAM = """
import json
from routilux_kernel import ErrorHandler, Flow, Routine, Runtime, configure_logging
from routilux_kernel.hooks.installed import (
    create_activation_policy, create_routine, describe_plugins, get_plugin_manager,
    plugin_load_failures,
)
from routilux_kernel.hooks.manager import create_plugin_manager
from routilux_kernel.core.errors import PluginError

warnings = []
configure_logging("WARNING", sink=lambda message: warnings.append(str(message)), format="{message}")
get_plugin_manager()


class Source(Routine):
    def __init__(self):
        super().__init__()
        self.add_slot("trigger")
        self.add_event("text", ["text"])

    def logic(self, slot_data, policy_message, job_state):
        for word in slot_data["trigger"][0]["words"]:
            self.emit("text", text=word)


class Collect(Routine):
    def __init__(self):
        super().__init__()
        self.add_slot("input")

    def logic(self, slot_data, policy_message, job_state):
        batch = slot_data["input"]
        job_state.shared_data.setdefault("batches", []).append([i["text"] for i in batch])
        job_state.shared_data.setdefault("workers", []).extend(i["worker"] for i in batch)


flow = Flow("sample-words")
flow.add_routine(Source(), "source")
flow.add_routine(create_routine("sample.upper", {"prefix": ">"}), "upper")
collect = Collect()
collect.set_activation_policy(create_activation_policy("sample.every_n", {"n": 2}))
flow.add_routine(collect, "collect")
flow.connect("source", "text", "upper", "trigger")
flow.connect("upper", "output", "collect", "input")

failing = Flow("sample-failing")
upper = create_routine("sample.upper")
upper.set_error_handler(ErrorHandler(strategy="sample.record_and_continue"))
failing.add_routine(upper, "upper")

with Runtime(thread_pool_size=2, executor="sample.threads") as runtime:
    ok = runtime.run(flow, {"words": ["a", "b", "c", "d", "e"]}, timeout=10)
    bad = runtime.run(failing, {}, timeout=10)

try:
    create_routine("bad-hooks.half-registered")
    half = "created"
except LookupError as exc:
    half = str(exc)

try:
    create_plugin_manager(strict=True)
    strict = None
except PluginError as exc:
    strict = str(exc)

print(json.dumps({
    "ok": {"status": str(ok.status), "shared": ok.shared_data},
    "bad": {"status": str(bad.status), "shared": bad.shared_data,
            "errors": [e["action"] for e in bad.errors]},
    "plugins": describe_plugins(),
    "failures": plugin_load_failures(),
    "warnings": warnings,
    "half_registered": half,
    "strict": strict,
}))
"""


@pytest.fixture(scope="module")
def discovered(plugin_site: Path) -> dict[str, Any]:
    result: dict[str, Any] = result_of(run_python(plugin_site, USER_PROGRAM))
    return result


def test_sample_routine_created_by_name_runs_on_the_sample_executor(
    discovered: dict[str, Any],
) -> None:
    ok = discovered["ok"]
    assert ok["status"] == "completed"
    # sample.every_n(n=2) batches the five upper-cased words; the rest comes when idle
    assert ok["shared"]["batches"] == [[">A", ">B"], [">C", ">D"], [">E"]]
    assert ok["shared"]["workers"] and all(
        worker.startswith("sample-worker") for worker in ok["shared"]["workers"]
    )


def test_sample_error_strategy_handles_a_failing_plugin_routine(discovered: dict[str, Any]) -> None:
    bad = discovered["bad"]
    assert bad["status"] == "completed"  # record_and_continue: the job goes on
    assert bad["errors"] == ["continue"]
    assert bad["shared"]["sample.errors"] == [
        "upper: ValueError: sample.upper: every trigger item needs a 'text' string, got {}"
    ]


def test_sample_lifecycle_hook_fires_for_every_job(discovered: dict[str, Any]) -> None:
    assert discovered["ok"]["shared"]["sample.finished"] == "completed"
    assert discovered["bad"]["shared"]["sample.finished"] == "completed"


def test_sample_plugin_described_with_distribution_hooks_and_registrations(
    discovered: dict[str, Any],
) -> None:
    by_name = {p["name"]: p for p in discovered["plugins"]}
    assert by_name["sample"] == {
        "name": "sample",
        "distribution": SAMPLE,
        "version": "0.3.1",
        "builtin": False,
        "hooks": [
            "job_finished",
            "register_activation_policies",
            "register_error_strategies",
            "register_executors",
            "register_routines",
        ],
        "registered": {
            "executors": ["sample.threads"],
            "routines": ["sample.upper"],
            "activation_policies": ["sample.every_n"],
            "error_strategies": ["sample.record_and_continue"],
            "commands": [],
            "job_stores": [],
        },
    }
    builtins = [p for p in discovered["plugins"] if p["builtin"]]
    assert builtins and all(p["distribution"] is None for p in builtins)
    assert "thread" in {name for p in builtins for name in p["registered"]["executors"]}


def _our_failures(discovered: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["entry_point"]: f for f in discovered["failures"] if f["distribution"] in OURS}


def test_broken_plugins_reported_with_distribution_version_and_cause(
    discovered: dict[str, Any],
) -> None:
    failures = _our_failures(discovered)
    assert set(failures) == {"broken", "typo", "extra-argument", "raising", "duplicate"}
    assert failures["broken"]["distribution"] == BROKEN
    assert failures["broken"]["version"] == "0.0.1"
    assert failures["broken"]["error"] == (
        "import failed: ModuleNotFoundError: No module named 'routilux_missing_dependency'"
    )
    for name in ("typo", "extra-argument", "raising", "duplicate"):
        assert (failures[name]["distribution"], failures[name]["version"]) == (BAD_HOOKS, "1.2.3")
    assert (
        "unknown hook(s) 'job_finish' (did you mean 'job_finished'?)" in failures["typo"]["error"]
    )
    assert "for hook 'routine_started'" in failures["extra-argument"]["error"]
    assert "{'attempt'}" in failures["extra-argument"]["error"]
    assert failures["raising"]["error"] == (
        "plugin 'raising' failed in register_routines: RuntimeError: licence server unreachable"
    )
    assert failures["duplicate"]["error"] == (
        "executor 'thread' is registered twice: by plugin "
        "'routilux_kernel.executors.thread' and by plugin 'duplicate'"
    )


def test_broken_plugins_logged_as_warnings(discovered: dict[str, Any]) -> None:
    logged = "\n".join(discovered["warnings"])
    for entry_point, dist in (("broken", f"{BROKEN} 0.0.1"), ("raising", f"{BAD_HOOKS} 1.2.3")):
        assert f"routilux plugin {entry_point!r} ({dist}, entry point" in logged


def test_broken_plugins_left_out_completely(discovered: dict[str, Any]) -> None:
    names = {p["name"] for p in discovered["plugins"]}
    assert not names & {"broken", "typo", "extra-argument", "raising", "duplicate"}
    # what 'raising' registered before it raised is gone, and its job_started never ran
    assert "unknown routine 'bad-hooks.half-registered'" in discovered["half_registered"]
    assert "bad-hooks.raising" not in discovered["ok"]["shared"]


def test_strict_argument_raises_on_the_first_broken_plugin(discovered: dict[str, Any]) -> None:
    message = discovered["strict"]
    assert message is not None and message.endswith("(strict mode)")
    assert re.search(rf"\(({BROKEN} 0\.0\.1|{BAD_HOOKS} 1\.2\.3), entry point", message)


def test_strict_environment_variable_makes_a_runtime_fail(plugin_site: Path) -> None:
    done = run_python(
        plugin_site, "from routilux_kernel import Runtime\nRuntime()", ROUTILUX_STRICT_PLUGINS="1"
    )
    assert done.returncode == 1
    assert "routilux_kernel.core.errors.PluginError: routilux plugin" in done.stderr
    assert "(strict mode)" in done.stderr


LIST_PROGRAM = """
import json
from routilux_kernel.hooks.installed import describe_plugins, plugin_load_failures
from routilux_kernel import Runtime
runtime = Runtime()
print(json.dumps({
    "plugins": [p["name"] for p in describe_plugins() if not p["builtin"]],
    "failures": [f["entry_point"] for f in plugin_load_failures()],
    "routines": runtime.registries.routines.names(),
}))
"""


@pytest.mark.parametrize(
    ("env", "plugins", "failures"),
    [
        ({"ROUTILUX_LOAD_PLUGINS": ""}, [], []),
        ({"ROUTILUX_LOAD_PLUGINS": "sample"}, ["sample"], []),
        ({"ROUTILUX_LOAD_PLUGINS": "Routilux_Sample_Plugin, broken"}, ["sample"], ["broken"]),
    ],
    ids=["empty-loads-none", "by-entry-point-name", "by-distribution-name"],
)
def test_load_plugins_loads_only_the_listed_ones(
    plugin_site: Path, env: dict[str, str], plugins: list[str], failures: list[str]
) -> None:
    result = result_of(run_python(plugin_site, LIST_PROGRAM, **env))
    assert result["plugins"] == plugins
    assert result["failures"] == failures
    assert ("sample.upper" in result["routines"]) == bool(plugins)


def test_disable_plugins_skips_listed_ones_and_keeps_the_rest(plugin_site: Path) -> None:
    env = {"ROUTILUX_DISABLE_PLUGINS": f"broken,{BAD_HOOKS}"}
    result = result_of(run_python(plugin_site, LIST_PROGRAM, **env))
    assert "sample" in result["plugins"]
    assert not {"broken", "typo", "extra-argument", "raising", "duplicate"} & set(
        result["failures"]
    )
    env = {"ROUTILUX_DISABLE_PLUGINS": "sample", "ROUTILUX_LOAD_PLUGINS": "sample,broken"}
    result = result_of(run_python(plugin_site, LIST_PROGRAM, **env))
    assert result["plugins"] == []
    assert "sample.upper" not in result["routines"]
    assert result["failures"] == ["broken"]


TRACE_PROGRAM = """
import sys
from routilux_kernel import Flow, Runtime, configure_logging
from routilux_kernel.hooks.installed import create_routine
configure_logging("INFO", sink=sys.stdout, format="{message}")
flow = Flow("traced")
flow.add_routine(create_routine("sample.upper"), "upper")
with Runtime() as runtime:
    print("status:", runtime.run(flow, {"text": "hi"}, timeout=10).status)
"""


def test_trace_plugins_logs_every_hook_call(plugin_site: Path) -> None:
    env = {"ROUTILUX_LOAD_PLUGINS": "sample", "ROUTILUX_TRACE_PLUGINS": "1"}
    done = run_python(plugin_site, TRACE_PROGRAM, **env)
    assert done.returncode == 0, done.stderr
    traced = [line for line in done.stdout.splitlines() if line.startswith("plugin trace:")]
    assert any(
        line.startswith("plugin trace: job_finished [hook] job_state: <JobState")
        and "flow: <Flow 'traced'" in line
        for line in traced
    ), traced
    assert "plugin trace: finish job_finished --> [] [hook]" in traced
    assert "status: completed" in done.stdout
    untraced = run_python(plugin_site, TRACE_PROGRAM, ROUTILUX_LOAD_PLUGINS="sample")
    assert "plugin trace:" not in untraced.stdout and "status: completed" in untraced.stdout


def test_the_cli_says_which_plugins_were_left_out(plugin_site: Path) -> None:
    """A missing routine is often a plugin that failed to load: every command says so."""
    done = run_python(
        plugin_site,
        "import sys; from routilux_kernel.cli import main; sys.exit(main(['routines']))",
    )
    assert done.returncode == 0, done.stderr
    assert "sample.upper" in done.stdout
    assert re.search(
        r"plugin 'broken' \(routilux-broken-plugin 0\.0\.1\) was left out: "
        r"import failed: ModuleNotFoundError",
        done.stderr,
    ), done.stderr


# A process-executor worker reports what it sees: its plugins, their failures, and whether
# it read the installed metadata itself.
WORKER_VIEW_PROGRAM = """
import json, sys
from routilux_kernel import Flow, Routine, Runtime
from routilux_kernel.hooks.installed import describe_plugins, plugin_load_failures


def installed(described):
    return sorted((p["name"], p["distribution"], p["version"]) for p in described
                  if not p["builtin"])


def failed(failures):
    return sorted((f["entry_point"], f["distribution"], f["error"].split(":")[0])
                  for f in failures)


class Report(Routine):
    def __init__(self):
        super().__init__()
        self.add_slot("trigger")

    def logic(self, slot_data, policy_message, job_state):
        job_state.shared_data["worker"] = {
            "plugins": installed(describe_plugins()),
            "failures": failed(plugin_load_failures()),
            "metadata_read": sorted(
                name for name in ("importlib_metadata", "importlib.metadata", "email.parser")
                if name in sys.modules
            ),
        }


flow = Flow("worker-view")
flow.add_routine(Report(), "report")
with Runtime(executor="process", executor_options={"max_workers": 1}) as runtime:
    state = runtime.run(flow, {}, timeout=30)
print(json.dumps({
    "status": str(state.status),
    "driver": {"plugins": installed(describe_plugins()),
               "failures": failed(plugin_load_failures())},
    "worker": state.shared_data.get("worker"),
    "errors": [e["error"] for e in state.errors],
}))
"""


def test_process_workers_load_the_plugins_their_driver_found_without_reading_metadata(
    plugin_site: Path,
) -> None:
    result = result_of(run_python(plugin_site, WORKER_VIEW_PROGRAM))
    assert result["status"] == "completed", result["errors"]
    driver, worker = result["driver"], result["worker"]
    assert ["sample", SAMPLE, "0.3.1"] in driver["plugins"]
    assert ["broken", BROKEN, "import failed"] in driver["failures"]
    # The same plugins and the same failures (named by distribution), in the worker...
    assert worker["plugins"] == driver["plugins"]
    assert worker["failures"] == driver["failures"]
    # ... which took the entry points from its driver instead of reading the metadata.
    assert worker["metadata_read"] == []
