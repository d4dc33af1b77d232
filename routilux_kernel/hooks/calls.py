"""The lifecycle hooks a runtime calls, resolved once so unimplemented hooks cost nothing."""

from __future__ import annotations

from typing import Any

import pluggy

from routilux_kernel.core.lazy_logger import logger
from routilux_kernel.hooks.manager import builtin_plugins

# Hooks on the per-activation path: left as None when only built-in plugins implement them.
_LIFECYCLE = (
    "job_started",
    "job_finished",
    "routine_started",
    "routine_finished",
    "event_emitted",
    "run_activation",
    "remote_activation_context",
)
_OBSERVERS = frozenset(_LIFECYCLE) - {"run_activation", "remote_activation_context"}

# How an unmonitored manager runs a call; tracing replaces it (pluggy keeps it private,
# so if that ever changes every manager counts as monitored: slower, never wrong).
_PLAIN_HOOKEXEC = getattr(pluggy.PluginManager("routilux"), "_inner_hookexec", None)


def _monitored(pm: pluggy.PluginManager) -> bool:
    """True when hook calls of ``pm`` are traced, so they must go through pluggy."""
    if getattr(pm, "tracing", False) or _PLAIN_HOOKEXEC is None:
        return True
    return getattr(pm, "_inner_hookexec", None) is not _PLAIN_HOOKEXEC


class HookSet:
    """Per-runtime view of the plugin manager's hooks.

    A lifecycle hook that no plugin but the built-ins implements is None, and the scheduler
    skips it. Observer hooks whose implementations are all plain functions are called
    directly (see :class:`DirectObserverCall`) unless the manager's calls are traced.
    """

    job_started: Any
    job_finished: Any
    routine_started: Any
    routine_finished: Any
    event_emitted: Any
    run_activation: Any
    remote_activation_context: Any

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        builtin = set(builtin_plugins())
        monitored = _monitored(pm)
        for name in _LIFECYCLE:
            caller = getattr(pm.hook, name)
            implemented = any(impl.plugin_name not in builtin for impl in caller.get_hookimpls())
            setattr(self, name, _fastest_call(caller, monitored) if implemented else None)
        self.decide_error = pm.hook.decide_error

    def notify(self, caller: Any, **kwargs: Any) -> None:
        """Call an observer hook; a plugin that raises is logged, never fatal to the job."""
        try:
            caller(**kwargs)
        except Exception as exc:
            logger.opt(exception=True).error(
                "{} raised in hook {}; the job goes on", self.blame(caller, exc), caller.name
            )

    def blame(self, caller: Any, exc: BaseException) -> str:
        """The plugin (with its distribution, when installed) whose implementation raised."""
        owners = {}
        for impl in caller.get_hookimpls():
            code = getattr(impl.function, "__code__", None)
            if code is not None:
                owners[code] = impl.plugin_name
        culprit = None
        frame = exc.__traceback__
        while frame is not None:  # the innermost implementation frame is the one at fault
            culprit = owners.get(frame.tb_frame.f_code, culprit)
            frame = frame.tb_next
        if culprit is None:
            return "a plugin"
        source = getattr(self.pm, "sources", {}).get(culprit)
        return f"routilux {source.describe()}" if source is not None else f"plugin {culprit!r}"


def _fastest_call(caller: Any, monitored: bool) -> Any:
    """A direct call when it is equivalent to pluggy's, else pluggy's own hook caller."""
    impls = caller.get_hookimpls()
    if monitored or any(impl.kwargnames or impl.hookwrapper for impl in impls):
        return caller
    if caller.name in _OBSERVERS and not any(impl.wrapper for impl in impls):
        return DirectObserverCall(caller)
    if caller.name == "run_activation" and DirectWrapperCall.fits(impls):
        return DirectWrapperCall(caller)
    return caller


class DirectObserverCall:
    """Calls an observer hook's implementations straight, in pluggy's order and way.

    pluggy's general call path (argument checks, result collection, wrapper machinery)
    costs about a microsecond per call, several per routed event; observers need none of
    it. As with pluggy, implementations run newest first and the first exception stops
    the call and propagates.
    """

    __slots__ = ("name", "_caller", "_calls")

    def __init__(self, caller: Any) -> None:
        self.name: str = caller.name
        self._caller = caller
        spec_args = tuple(caller.spec.argnames)
        # An implementation taking every argument in order gets the keywords as they are.
        self._calls = tuple(
            (impl.function, None if tuple(impl.argnames) == spec_args else impl.argnames)
            for impl in reversed(caller.get_hookimpls())
        )

    def __call__(self, **kwargs: Any) -> None:
        for function, argnames in self._calls:
            if argnames is None:
                function(**kwargs)
            else:
                function(*[kwargs[argname] for argname in argnames])

    def get_hookimpls(self) -> list[Any]:
        implementations: list[Any] = self._caller.get_hookimpls()
        return implementations


class DirectWrapperCall:
    """``run_activation`` as ``wrapper=True`` implementations around the built-in runner.

    The same protocol as pluggy's call loop for new-style wrappers (setup up to the
    ``yield`` outermost first, the result or exception sent back innermost first, a
    wrapper may replace either), without its per-call generality: about a third of the
    cost. Used only when every implementation but the innermost is such a wrapper.
    """

    __slots__ = ("name", "_caller", "_wrappers", "_inner")

    def __init__(self, caller: Any) -> None:
        self.name: str = caller.name
        self._caller = caller
        ordered = list(reversed(caller.get_hookimpls()))  # pluggy's call order
        self._wrappers = tuple((impl.function, bool(impl.argnames)) for impl in ordered[:-1])
        self._inner = ordered[-1].function

    @staticmethod
    def fits(impls: list[Any]) -> bool:
        ordered = list(reversed(impls))
        inner = ordered[-1] if ordered else None
        return (
            inner is not None
            and not inner.wrapper
            and inner.plugin_name in builtin_plugins()
            and all(
                impl.wrapper and impl.argnames in ((), ("activation",)) for impl in ordered[:-1]
            )
        )

    def __call__(self, *, activation: Any) -> Any:
        teardowns = []
        result: Any = None
        exception: BaseException | None = None
        try:
            for function, takes_activation in self._wrappers:
                generator = function(activation) if takes_activation else function()
                try:
                    next(generator)
                except StopIteration:
                    _wrapper_failed(generator, "did not yield")
                teardowns.append(generator)
            result = self._inner(activation)
        except BaseException as exc:  # noqa: BLE001 - handed to the wrappers, then re-raised
            exception = exc
        for generator in reversed(teardowns):
            try:
                if exception is not None:
                    try:
                        generator.throw(exception)
                    except RuntimeError as error:
                        # a StopIteration thrown into a generator comes back as RuntimeError
                        if isinstance(exception, StopIteration) and error.__cause__ is exception:
                            generator.close()
                            continue
                        raise
                else:
                    generator.send(result)
                generator.close()
            except StopIteration as stop:
                result, exception = stop.value, None
                continue
            except BaseException as exc:  # noqa: BLE001 - the wrapper's answer
                exception = exc
                continue
            _wrapper_failed(generator, "has second yield")
        if exception is not None:
            raise exception
        return result

    def get_hookimpls(self) -> list[Any]:
        implementations: list[Any] = self._caller.get_hookimpls()
        return implementations


def _wrapper_failed(generator: Any, problem: str) -> None:
    code = generator.gi_code
    raise RuntimeError(
        f"wrap_controller at {code.co_name!r} {code.co_filename}:{code.co_firstlineno} {problem}"
    )
