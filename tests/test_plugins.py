"""Plugin managers and hook objects in code: isolation, lifecycle hooks, wrappers, decisions.

Installed (entry point) plugins are tested in test_plugin_discovery.py, in subprocesses.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pluggy
import pytest
from loguru import logger

from routilux_kernel import ErrorDecision, ErrorHandler, Flow, Routine, Runtime, hookimpl
from routilux_kernel.builtin_plugins import BUILTIN_PLUGINS
from routilux_kernel.core.error_handling import ActivationFailure, ErrorAction
from routilux_kernel.core.errors import PluginError
from routilux_kernel.hooks import specs as hookspecs
from routilux_kernel.hooks.calls import HookSet
from routilux_kernel.hooks.installed import (
    create_activation_policy,
    create_routine,
    describe_plugins,
    get_plugin_manager,
    plugin_load_failures,
    plugin_manager_with,
)
from routilux_kernel.hooks.manager import create_plugin_manager, trace_hook_calls
from routilux_kernel.hooks.registry import registries_for

WAIT = 10.0
LIFECYCLE = ("job_started", "job_finished", "routine_started", "routine_finished", "event_emitted")


@pytest.fixture
def pm() -> Any:
    """An isolated manager: built-in plugins only, nothing installed."""
    return create_plugin_manager(load_entry_points=False)


@pytest.fixture
def make(pm: Any) -> Iterator[Callable[..., Runtime]]:
    """Runtimes on the isolated manager, shut down at the end of the test."""
    made: list[Runtime] = []

    def build(**options: Any) -> Runtime:
        options.setdefault("plugin_manager", pm)
        runtime = Runtime(**options)
        made.append(runtime)
        return runtime

    yield build
    for runtime in made:
        runtime.shutdown(wait=True, timeout=WAIT)


def build_routine(slots: tuple[str, ...], events: tuple[str, ...], logic: Any) -> Routine:
    routine = Routine()
    for slot in slots:
        routine.add_slot(slot)
    for event in events:
        routine.add_event(event)
    routine.set_logic(logic)
    return routine


def two_step_flow(flow_id: str = "two-step", fail_second: BaseException | None = None) -> Flow:
    """``first`` emits ``out`` once to ``second``; ``second`` raises ``fail_second`` if given."""
    flow = Flow(flow_id)

    def first(slot_data: Any, message: Any, job_state: Any) -> str:
        time.sleep(0.02)
        flow.routines["first"].emit("out", value=1)
        return "first-done"

    def second(slot_data: Any, message: Any, job_state: Any) -> str:
        if fail_second is not None:
            raise fail_second
        job_state.shared_data["got"] = slot_data["input"][0]["value"]
        return "second-done"

    flow.add_routine(build_routine(("trigger",), ("out",), first), "first")
    flow.add_routine(build_routine(("input",), (), second), "second")
    flow.connect("first", "out", "second", "input")
    return flow


class Recorder:
    """Implements every lifecycle hook, recording the calls (from any worker thread)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self._lock = threading.Lock()

    def _add(self, *call: Any) -> None:
        with self._lock:
            self.calls.append(call)

    @hookimpl
    def job_started(self, job_state: Any, flow: Flow) -> None:
        self._add("job_started", flow.flow_id, str(job_state.status))

    @hookimpl
    def job_finished(self, job_state: Any, flow: Flow) -> None:
        self._add("job_finished", flow.flow_id, str(job_state.status))

    @hookimpl
    def routine_started(self, job_state: Any, routine_id: str) -> None:
        self._add("routine_started", routine_id)

    @hookimpl
    def routine_finished(self, job_state: Any, routine_id: str, error: Any) -> None:
        self._add("routine_finished", routine_id, type(error).__name__ if error else None)

    @hookimpl
    def event_emitted(self, job_state: Any, routine_id: str, event: str, data: Any) -> None:
        self._add("event_emitted", routine_id, event, dict(data))


# -- isolated managers ----------------------------------------------------------------------


def test_create_plugin_manager_gives_independent_managers() -> None:
    first = create_plugin_manager(load_entry_points=False)
    second = create_plugin_manager(load_entry_points=False)
    assert first is not second
    assert [name for name, _ in first.list_name_plugin()] == list(BUILTIN_PLUGINS)
    recorder = Recorder()
    first.register(recorder)
    try:
        assert first.is_registered(recorder) and not second.is_registered(recorder)
    finally:
        first.unregister(recorder)
    assert get_plugin_manager() is get_plugin_manager()


def test_inline_plugin_registers_a_routine_created_by_name(pm: Any) -> None:
    class Greet(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.add_slot("trigger")
            self.set_config(greeting="hello")

    class GreetPlugin:
        @hookimpl
        def register_routines(self, register: Any) -> None:
            register("test.greet", Greet)

    plugin = GreetPlugin()
    pm.register(plugin)
    try:
        routine = create_routine("test.greet", {"greeting": "hi"}, plugin_manager=pm)
        assert isinstance(routine, Greet) and routine.get_config("greeting") == "hi"
        assert create_routine("test.greet", plugin_manager=pm) is not routine
    finally:
        pm.unregister(plugin)
    with pytest.raises(LookupError, match="unknown routine 'test.greet'; installed: none"):
        create_routine("test.greet", plugin_manager=pm)


def test_create_routine_rejects_what_is_not_a_routine(pm: Any) -> None:
    class NotARoutine:
        @hookimpl
        def register_routines(self, register: Any) -> None:
            register("test.dict", dict)

    plugin = NotARoutine()
    pm.register(plugin, name="not-a-routine")
    try:
        with pytest.raises(PluginError, match="'test.dict' registered by plugin 'not-a-routine'"):
            create_routine("test.dict", plugin_manager=pm)
    finally:
        pm.unregister(plugin)


def test_create_activation_policy_by_name(pm: Any) -> None:
    policy = create_activation_policy("batch_size", {"size": 3}, plugin_manager=pm)
    assert policy.size == 3
    with pytest.raises(PluginError, match="activation policy 'batch_size' .* rejected options"):
        create_activation_policy("batch_size", {"sizes": 3}, plugin_manager=pm)
    with pytest.raises(LookupError, match="unknown activation policy 'nope'; installed: all_"):
        create_activation_policy("nope", plugin_manager=pm)


# -- Runtime(plugins=[...]) ----------------------------------------------------------------


def test_runtime_plugins_apply_to_that_runtime_only(pm: Any, make: Callable[..., Runtime]) -> None:
    recorder = Recorder()
    watched = make(plugins=[recorder])
    plain = make()
    flow = two_step_flow()
    assert plain.run(flow, timeout=WAIT).status == "completed"
    assert recorder.calls == []
    assert watched.run(flow, timeout=WAIT).status == "completed"
    assert ("job_finished", "two-step", "completed") in recorder.calls
    assert not pm.is_registered(recorder)  # the manager the runtimes share is untouched
    calls = len(recorder.calls)
    assert plain.run(flow, timeout=WAIT).status == "completed"
    assert len(recorder.calls) == calls


def test_runtime_plugins_on_top_of_the_process_wide_manager() -> None:
    recorder = Recorder()
    with Runtime(plugins=[recorder]) as runtime:
        base = get_plugin_manager()
        assert runtime.plugin_manager is not base and not base.is_registered(recorder)
        assert runtime.registries.executors.names() == registries_for(base).executors.names()
        assert runtime.run(two_step_flow(), timeout=WAIT).status == "completed"
    assert recorder.calls[0][0] == "job_started"


def test_lifecycle_hooks_in_order(make: Callable[..., Runtime]) -> None:
    recorder = Recorder()
    runtime = make(thread_pool_size=1, plugins=[recorder])  # one worker: a strict order
    state = runtime.run(two_step_flow(), timeout=WAIT)
    assert state.status == "completed" and state.shared_data["got"] == 1
    assert recorder.calls == [
        ("job_started", "two-step", "running"),
        ("routine_started", "first"),
        ("event_emitted", "first", "out", {"value": 1}),
        ("routine_finished", "first", None),
        ("routine_started", "second"),
        ("routine_finished", "second", None),
        ("job_finished", "two-step", "completed"),
    ]


def test_routine_finished_sees_the_error(make: Callable[..., Runtime]) -> None:
    recorder = Recorder()
    runtime = make(plugins=[recorder])
    state = runtime.run(two_step_flow(fail_second=ValueError("bad input")), timeout=WAIT)
    assert state.status == "failed"
    assert ("routine_finished", "second", "ValueError") in recorder.calls
    # A failed job ends at once; an activation still running may report after job_finished.
    assert [c for c in recorder.calls if c[0] == "job_finished"] == [
        ("job_finished", "two-step", "failed")
    ]


def test_lifecycle_hooks_cost_nothing_unless_implemented(pm: Any) -> None:
    hooks = HookSet(pm)  # only built-ins: the scheduler skips every lifecycle hook
    assert all(getattr(hooks, name) is None for name in (*LIFECYCLE, "run_activation"))

    class OnlyFinished:
        @hookimpl
        def job_finished(self, job_state: Any, flow: Any) -> None:
            pass

    derived = plugin_manager_with([OnlyFinished()], pm)
    hooks = HookSet(derived)
    assert hooks.job_finished is not None
    assert all(getattr(hooks, name) is None for name in LIFECYCLE if name != "job_finished")


def test_a_raising_observer_hook_is_logged_and_the_job_goes_on(
    make: Callable[..., Runtime],
) -> None:
    class Faulty:
        @hookimpl
        def job_finished(self, job_state: Any, flow: Any) -> None:
            raise RuntimeError("observer bug")

    messages: list[str] = []
    logger.enable("routilux_kernel")
    sink = logger.add(lambda m: messages.append(str(m)), level="ERROR", format="{message}")
    try:
        state = make(plugins=[Faulty()]).run(two_step_flow(), timeout=WAIT)
    finally:
        logger.remove(sink)
        logger.disable("routilux_kernel")
    assert state.status == "completed"
    assert any(
        "plugin 'Faulty@" in m and "raised in hook job_finished" in m and "observer bug" in m
        for m in messages
    ), messages


# -- wrappers and decisions -------------------------------------------------------------


class Timing:
    """A wrapper=True run_activation: times every activation and sees how it ended."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, Any, float]] = []

    @hookimpl(wrapper=True)
    def run_activation(self, activation: Any) -> Any:
        start = time.perf_counter()
        try:
            result = yield
        except Exception as exc:
            elapsed = time.perf_counter() - start
            self.seen.append((activation.routine_id, "raised", type(exc).__name__, elapsed))
            raise
        elapsed = time.perf_counter() - start
        self.seen.append((activation.routine_id, "returned", result, elapsed))
        return result


def test_wrapper_run_activation_wraps_each_activation(make: Callable[..., Runtime]) -> None:
    timing = Timing()
    runtime = make(thread_pool_size=1, plugins=[timing])  # one worker: a strict order
    state = runtime.run(two_step_flow(), timeout=WAIT)
    assert state.status == "completed" and state.shared_data["got"] == 1
    assert [(rid, how, result) for rid, how, result, _ in timing.seen] == [
        ("first", "returned", "first-done"),
        ("second", "returned", "second-done"),
    ]
    assert timing.seen[0][3] >= 0.02  # the wrapper's clock spans the logic's sleep


def test_wrapper_run_activation_sees_the_exception(make: Callable[..., Runtime]) -> None:
    timing = Timing()
    runtime = make(thread_pool_size=1, plugins=[timing])  # one worker: a strict order
    state = runtime.run(two_step_flow(fail_second=KeyError("missing")), timeout=WAIT)
    assert state.status == "failed" and isinstance(state.error, KeyError)
    assert [(rid, how, what) for rid, how, what, _ in timing.seen] == [
        ("first", "returned", "first-done"),
        ("second", "raised", "KeyError"),
    ]


class Forgiving:
    """Overrides whatever strategy is configured: a KeyError never stops a job."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    @hookimpl
    def decide_error(self, failure: ActivationFailure) -> ErrorDecision | None:
        self.asked.append((failure.routine_id, failure.handler.strategy_name))
        if isinstance(failure.error, KeyError):
            return ErrorDecision(ErrorAction.CONTINUE, reason="forgiven")
        return None  # let the configured strategy decide


def test_decide_error_overrides_the_strategy(make: Callable[..., Runtime]) -> None:
    forgiving = Forgiving()
    runtime = make(plugins=[forgiving], default_error_handler=ErrorHandler("stop"))
    state = runtime.run(two_step_flow(fail_second=KeyError("missing")), timeout=WAIT)
    assert state.status == "completed"
    assert [e["action"] for e in state.errors] == ["continue"]
    assert forgiving.asked == [("second", "stop")]


def test_decide_error_returning_none_defers_to_the_strategy(make: Callable[..., Runtime]) -> None:
    runtime = make(plugins=[Forgiving()], default_error_handler=ErrorHandler("stop"))
    state = runtime.run(two_step_flow(fail_second=ValueError("bad")), timeout=WAIT)
    assert state.status == "failed" and state.error_routine_id == "second"


def test_decide_error_is_asked_even_for_a_strategy_nobody_registered(
    make: Callable[..., Runtime],
) -> None:
    forgiving = Forgiving()
    runtime = make(plugins=[forgiving], default_error_handler=ErrorHandler("no-such-strategy"))
    state = runtime.run(two_step_flow(fail_second=KeyError("missing")), timeout=WAIT)
    assert state.status == "completed"  # the hook decided; the unknown name did not matter
    assert forgiving.asked == [("second", "no-such-strategy")]
    state = runtime.run(two_step_flow(fail_second=ValueError("bad")), timeout=WAIT)
    assert state.status == "failed"  # the hook deferred: STOP, saying why
    assert "unknown error strategy 'no-such-strategy'" in state.errors[-1]["reason"]


# -- invalid plugins given in code ----------------------------------------------------------


def test_unknown_hook_in_code_raises_with_a_hint(pm: Any) -> None:
    class Typo:
        @hookimpl
        def job_finish(self, job_state: Any, flow: Any) -> None:
            pass

    with pytest.raises(PluginError, match=r"unknown hook\(s\) 'job_finish' \(did you mean 'job_fi"):
        create_plugin_manager(load_entry_points=False, plugins=[Typo()])
    with pytest.raises(PluginError, match="Typo@"):
        Runtime(plugin_manager=pm, plugins=[Typo()])
    assert [name for name, _ in pm.list_name_plugin()] == list(BUILTIN_PLUGINS)


def test_unknown_hook_argument_in_code_raises(pm: Any) -> None:
    class ExtraArgument:
        @hookimpl
        def routine_started(self, job_state: Any, routine_id: str, attempt: int) -> None:
            pass

    with pytest.raises(PluginError, match=r"hook 'routine_started'.*\{'attempt'\}"):
        Runtime(plugin_manager=pm, plugins=[ExtraArgument()])


def test_raising_registration_hook_in_code_names_plugin_and_hook(pm: Any) -> None:
    class Raising:
        @hookimpl
        def register_executors(self, register: Any) -> None:
            raise OSError("no such device")

    with pytest.raises(PluginError, match="failed in register_executors: OSError: no such dev"):
        Runtime(plugin_manager=pm, plugins=[Raising()])


def test_duplicate_name_in_code_names_both_plugins(pm: Any) -> None:
    class Thief:
        __name__ = "thief"

        @hookimpl
        def register_error_strategies(self, register: Any) -> None:
            register("retry", object())

    with pytest.raises(PluginError) as raised:
        Runtime(plugin_manager=pm, plugins=[Thief()])
    assert str(raised.value) == (
        "error strategy 'retry' is registered twice: by plugin "
        "'routilux_kernel.core.error_handling' and by plugin 'thief'"
    )


# -- describing and tracing -------------------------------------------------------------


def test_describe_plugins_lists_builtins_then_inline_plugins(pm: Any) -> None:
    class Sample:
        @hookimpl
        def register_routines(self, register: Any) -> None:
            register("test.b", Routine)
            register("test.a", Routine)

        @hookimpl
        def job_started(self, job_state: Any, flow: Any) -> None:
            pass

    plugin = Sample()
    pm.register(plugin, name="inline-sample")
    try:
        described = describe_plugins(pm)
    finally:
        pm.unregister(plugin)
    assert [p["name"] for p in described] == [*BUILTIN_PLUGINS, "inline-sample"]
    assert all(p["builtin"] and p["distribution"] is None for p in described[:-1])
    assert described[-1] == {
        "name": "inline-sample",
        "distribution": None,
        "version": None,
        "builtin": False,
        "hooks": ["job_started", "register_routines"],
        "registered": {
            "executors": [],
            "routines": ["test.a", "test.b"],
            "activation_policies": [],
            "error_strategies": [],
            "commands": [],
            "job_stores": [],
        },
    }
    strategies = next(p for p in described if "register_error_strategies" in p["hooks"])
    assert strategies["registered"]["error_strategies"] == ["continue", "retry", "skip", "stop"]
    assert plugin_load_failures(pm) == []


def test_trace_hook_calls_writes_each_call(pm: Any, make: Callable[..., Runtime]) -> None:
    messages: list[str] = []
    logger.enable("routilux_kernel")
    sink = logger.add(lambda m: messages.append(str(m)), level="INFO", format="{message}")
    try:
        runtime = make(plugins=[Forgiving()])
        undo = trace_hook_calls(runtime.plugin_manager)
        state = runtime.run(two_step_flow(fail_second=KeyError("x")), timeout=WAIT)
        undo()
        runtime.run(two_step_flow(fail_second=KeyError("x")), timeout=WAIT)
    finally:
        logger.remove(sink)
        logger.disable("routilux_kernel")
    assert state.status == "completed"
    traced = [m for m in messages if m.startswith("plugin trace:")]
    assert len([m for m in traced if "plugin trace: decide_error [hook]" in m]) == 1
    assert any(m.startswith("plugin trace: finish decide_error --> ErrorDecision(") for m in traced)


# -- the direct call paths match pluggy's -----------------------------------------------


class FakeActivation:
    """Stands in for an Activation: ``call_logic`` returns or raises what it is given."""

    routine_id = "fake"

    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome

    def call_logic(self) -> Any:
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


def wrapper_plugin(kind: str, log: list[str], tag: str = "w", **options: Any) -> Any:
    """A plugin whose wrapper=True run_activation behaves as ``kind`` says."""

    class Wrapper:
        @hookimpl(wrapper=True, **options)
        def run_activation(self, activation: Any) -> Any:
            log.append(f"{tag}:before")
            if kind == "no-yield":
                return None  # still a generator function: it ends before its first yield
            try:
                result = yield
            except Exception as exc:
                log.append(f"{tag}:saw {type(exc).__name__}")
                if kind == "swallow":
                    return "recovered"
                if kind == "convert":
                    raise RuntimeError(f"converted {type(exc).__name__}") from exc
                raise
            log.append(f"{tag}:got {result!r}")
            if kind == "twice":
                yield
            return result * 2 if kind == "double" else result

    return Wrapper()


def outcome_of(call: Callable[..., Any], activation: FakeActivation) -> tuple[str, Any]:
    try:
        return "returned", call(activation=activation)
    except BaseException as exc:  # noqa: BLE001
        return "raised", f"{type(exc).__name__}: {str(exc).split(' at ')[0]}"


@pytest.mark.parametrize(
    ("kinds", "logic_outcome"),
    [
        (["pass"], 5),
        (["pass"], ValueError("bad")),
        (["double"], 5),
        (["swallow"], ValueError("bad")),
        (["convert"], KeyError("k")),
        (["pass", "double"], 5),
        (["swallow", "convert"], ValueError("bad")),
        (["pass"], StopIteration()),
        (["twice"], 5),
        (["pass", "no-yield"], 5),
    ],
)
def test_direct_wrapper_call_matches_pluggy(kinds: list[str], logic_outcome: Any) -> None:
    pluggy_log: list[str] = []
    direct_log: list[str] = []
    for log, target in ((pluggy_log, "pluggy"), (direct_log, "direct")):
        plugins = [wrapper_plugin(kind, log, f"{kind}{i}") for i, kind in enumerate(kinds)]
        pm = plugin_manager_with(plugins, create_plugin_manager(load_entry_points=False))
        hooks = HookSet(pm)
        assert type(hooks.run_activation).__name__ == "DirectWrapperCall"
        call = hooks.run_activation if target == "direct" else pm.hook.run_activation
        log.append(repr(outcome_of(call, FakeActivation(logic_outcome))))
    assert direct_log == pluggy_log


def test_direct_observer_call_matches_pluggy() -> None:
    calls: list[tuple[str, Any]] = []

    class Full:
        @hookimpl
        def event_emitted(self, job_state: Any, routine_id: str, event: str, data: Any) -> None:
            calls.append(("full", (routine_id, event, data)))

    class Partial:
        @hookimpl(tryfirst=True)
        def event_emitted(self, data: Any, event: str) -> None:
            calls.append(("partial", (event, data)))

    pm = plugin_manager_with([Full(), Partial()], create_plugin_manager(load_entry_points=False))
    hooks = HookSet(pm)
    assert type(hooks.event_emitted).__name__ == "DirectObserverCall"
    arguments = {"job_state": None, "routine_id": "r", "event": "e", "data": {"x": 1}}
    pm.hook.event_emitted(**arguments)
    through_pluggy, calls[:] = list(calls), []
    hooks.event_emitted(**arguments)
    assert calls == through_pluggy == [("partial", ("e", {"x": 1})), ("full", ("r", "e", {"x": 1}))]


def test_traced_managers_keep_pluggy_call_path() -> None:
    pm = plugin_manager_with([Recorder(), Timing()], create_plugin_manager(load_entry_points=False))
    assert type(HookSet(pm).job_started).__name__ == "DirectObserverCall"
    trace_hook_calls(pm)
    hooks = HookSet(pm)
    assert hooks.job_started is pm.hook.job_started
    assert hooks.run_activation is pm.hook.run_activation


def test_a_manager_holding_an_unchecked_plugin_fails_check_pending() -> None:
    class Typo:
        @hookimpl
        def job_finishd(self, job_state: Any, flow: Any) -> None:
            pass

    raw = pluggy.PluginManager("routilux")  # a manager built by hand, without our checks
    raw.add_hookspecs(hookspecs)
    raw.register(Typo(), name="typo")
    with pytest.raises(PluginError, match="unknown hook 'job_finishd' in plugin"):
        plugin_manager_with([], raw)


def test_get_plugin_manager_called_while_loading_fails_instead_of_hanging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from routilux_kernel.hooks import installed as plugins

    monkeypatch.setattr(plugins, "_default_pm", None)
    # as if an installed plugin called get_plugin_manager() while being imported
    monkeypatch.setattr(plugins, "create_plugin_manager", plugins.get_plugin_manager)
    with pytest.raises(PluginError, match="called while the plugins were being loaded"):
        plugins.get_plugin_manager()
    assert plugins._creating_default is False
