"""Checks shared by every part of a flow file: problems, imports, handlers, policies, executors."""

from __future__ import annotations

import builtins
import importlib
import inspect
import math
from typing import Any

from routilux_kernel.core.error_handling import (
    MAX_RETRIES,
    MAX_RETRY_BACKOFF,
    MAX_WAIT_SECONDS,
    ErrorHandler,
    ErrorStrategy,
    longest_retry_wait,
)
from routilux_kernel.core.errors import FlowValidationError
from routilux_kernel.flowfiles.rendering import (
    error_text,
    key_path,
    one_line,
    quoted,
    show,
    source_text,
)
from routilux_kernel.hooks.registry import Registries

#: Handler numbers: accepted types, how the message names them, upper bound.
_HANDLER_NUMBERS: dict[str, tuple[Any, str, float]] = {
    "max_retries": (int, "an integer", MAX_RETRIES),
    "retry_delay": ((int, float), "a number of seconds", MAX_WAIT_SECONDS),
    "retry_backoff": ((int, float), "a number", MAX_RETRY_BACKOFF),
}
#: Policy options that are a time to wait, in seconds.
_INTERVAL_OPTIONS = frozenset({"seconds", "interval", "delay", "timeout"})
HANDLER_KEYS = (
    "strategy",
    "max_retries",
    "retry_delay",
    "retry_backoff",
    "retryable_exceptions",
    "is_critical",
)
_BUILTIN_STRATEGIES = frozenset(str(s) for s in ErrorStrategy)


class FlowFileError(FlowValidationError):
    """A flow file (or dict) is invalid; ``problems`` holds one ``source: key: message`` each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = [one_line(problem) for problem in problems]
        super().__init__("\n".join(self.problems))


class SpecChecker:
    """Collects problems as ``source: key.path: message`` and turns names into objects."""

    def __init__(self, source: str, registries: Registries, registered_only: bool) -> None:
        self.source = source
        self.registries = registries
        self.registered_only = registered_only
        self.problems: list[str] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(f"{source_text(self.source)}: {path}: {message}")

    def unknown_keys(self, path: str, mapping: dict[Any, Any], allowed: tuple[str, ...]) -> None:
        for key in mapping:
            if key not in allowed:
                where = key_path(path, key)
                self.problem(where, f"unknown key; expected one of: {keys_text(allowed)}")

    def import_object(self, path: str, spec: str) -> Any:
        """``module:attr.attr`` -> the object, or None after recording why not."""
        if self.registered_only:
            known = ", ".join(self.registries.routines.names()) or "none"
            self.problem(
                path,
                f"{quoted(spec)} would be imported, but module:Class imports are "
                "switched off (--registered-only or registered_only = true); only "
                f"registered names are allowed (registered routines: {known})",
            )
            return None
        module_name, _, attribute = spec.partition(":")
        if not module_name.strip() or not attribute.strip():
            self.problem(
                path, f"{quoted(spec)}: expected module:Class, e.g. mypackage.routines:Fetch"
            )
            return None
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and (module_name + ".").startswith(exc.name + "."):
                self.problem(
                    path,
                    f"cannot import {quoted(spec)}: no module named {quoted(exc.name)} on "
                    "sys.path (the CLI adds the flow file's directory and the current "
                    "directory)",
                )
            else:
                self.problem(
                    path, f"importing module {quoted(module_name)} failed: {error_text(exc)}"
                )
            return None
        except KeyboardInterrupt:
            raise  # the user interrupting is not a problem of the file
        except BaseException as exc:  # noqa: BLE001 - SystemExit and the like from user code
            self.problem(path, f"importing module {quoted(module_name)} raised {error_text(exc)}")
            return None
        for part in attribute.split("."):
            try:
                obj = getattr(obj, part)
            except KeyboardInterrupt:
                raise
            except BaseException:  # noqa: BLE001 - a module __getattr__ may raise anything
                self.problem(
                    path, f"module {quoted(module_name)} has no attribute {quoted(attribute)}"
                )
                return None
        return obj

    def _error_handler(self, path: str, value: Any) -> ErrorHandler | None:
        if isinstance(value, str):
            value = {"strategy": value}
        if not isinstance(value, dict):
            self.problem(
                path,
                f"expected a strategy name or a mapping with {keys_text(HANDLER_KEYS)}, "
                f"got {show(value)}",
            )
            return None
        before = len(self.problems)
        strategy = value.get("strategy", "stop")
        builtin = isinstance(strategy, str) and strategy.lower() in _BUILTIN_STRATEGIES
        if not isinstance(strategy, str) or not (
            builtin or strategy in self.registries.error_strategies
        ):
            known = ", ".join(self.registries.error_strategies.names()) or "none"
            self.problem(
                f"{path}.strategy",
                f"unknown error strategy {quoted(strategy)}; registered strategies: {known}",
            )
        options = {k: v for k, v in value.items() if k not in HANDLER_KEYS}
        if builtin:
            self.unknown_keys(path, options, HANDLER_KEYS)
            options = {}
        numbers = self._handler_numbers(path, value)
        critical = value.get("is_critical", False)
        if not isinstance(critical, bool):
            self.problem(f"{path}.is_critical", f"expected true or false, got {show(critical)}")
        elif critical:
            numbers["is_critical"] = True
        exceptions = self._exception_classes(
            f"{path}.retryable_exceptions", value.get("retryable_exceptions")
        )
        if len(self.problems) > before:
            return None
        if exceptions:
            numbers["retryable_exceptions"] = tuple(exceptions)
        return ErrorHandler(strategy=strategy, options=options, **numbers)

    def _handler_numbers(self, path: str, value: dict[str, Any]) -> dict[str, Any]:
        """max_retries, retry_delay and retry_backoff, each finite and within its bound.

        Unbounded numbers are not harmless: an infinite delay (or a backoff that overflows)
        leaves a retry waiting forever, so the job never finishes; NaN retries at once.
        """
        numbers: dict[str, Any] = {}
        for key, (kinds, expected, upper) in _HANDLER_NUMBERS.items():
            if key not in value:
                continue
            number = value[key]
            if (
                isinstance(number, bool)
                or not isinstance(number, kinds)
                or (isinstance(number, float) and not math.isfinite(number))
                or not 0 <= number <= upper
            ):
                self.problem(
                    f"{path}.{key}", f"expected {expected} from 0 to {upper}, got {show(number)}"
                )
            else:
                numbers[key] = number
        if all(key in numbers for key in _HANDLER_NUMBERS if key in value):
            retries = numbers.get("max_retries", ErrorHandler.max_retries)
            delay = numbers.get("retry_delay", ErrorHandler.retry_delay)
            backoff = numbers.get("retry_backoff", ErrorHandler.retry_backoff)
            longest = longest_retry_wait(retries, delay, backoff)
            if longest > MAX_WAIT_SECONDS:
                self.problem(
                    path,
                    f"the last retry would wait retry_delay * retry_backoff ** "
                    f"(max_retries - 1) = {delay} * {backoff} ** {retries - 1}, more than "
                    f"{MAX_WAIT_SECONDS} seconds (one day); lower one of them",
                )
        return numbers

    def _exception_classes(self, path: str, value: Any) -> list[type[BaseException]]:
        if value is None:
            return []
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            self.problem(
                path,
                f"expected a list of exception names (ValueError or "
                f"module:Class), got {show(value)}",
            )
            return []
        classes = []
        for index, name in enumerate(names):
            item = f"{path}[{index}]"
            if ":" in name:
                found = self.import_object(item, name)
                if found is None:
                    continue  # the import problem is already recorded
            else:
                found = getattr(builtins, name, None)
            if isinstance(found, type) and issubclass(found, BaseException):
                classes.append(found)
            else:
                self.problem(
                    item,
                    f"{quoted(name)} is not an exception class; expected a built-in "
                    "exception name (ValueError) or module:Class",
                )
        return classes

    def _policy(self, path: str, value: Any) -> Any:
        name: Any
        options: dict[str, Any]
        if isinstance(value, str):
            name, options = value, {}
        elif isinstance(value, dict):
            name, options = value.get("name"), {k: v for k, v in value.items() if k != "name"}
        else:
            self.problem(
                path,
                "expected a policy name or a mapping like {name: batch_size, "
                f"size: 3}}, got {show(value)}",
            )
            return None
        if not isinstance(name, str) or name not in self.registries.activation_policies:
            known = ", ".join(self.registries.activation_policies.names()) or "none"
            self.problem(
                path, f"unknown activation policy {quoted(name)}; registered policies: {known}"
            )
            return None
        factory = self.registries.activation_policies.get(name)
        if isinstance(options.get("fn"), str):
            options["fn"] = self.import_object(f"{path}.fn", options["fn"])
            if options["fn"] is None:
                return None
            if not inspect.isfunction(options["fn"]):
                # Checked before anything could call it: a builtin such as os:abort must
                # never run because a flow file named it.
                self.problem(
                    f"{path}.fn",
                    f"{show(options['fn'])} is not a function; expected module:function "
                    "naming a def fn(slots, job_state)",
                )
                return None
        if not self._policy_numbers(path, options):
            return None
        try:
            signature = inspect.signature(factory)
        except (TypeError, ValueError):
            signature = None
        if signature is not None:
            expected = ", ".join(signature.parameters) or "none"
            takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
            unknown = [key for key in options if key not in signature.parameters]
            if unknown and not takes_any:
                for key in unknown:
                    self.problem(
                        key_path(path, key),
                        f"unknown option of policy {quoted(name)}; its options: {expected}",
                    )
                return None
            try:
                signature.bind(**options)
            except TypeError as exc:
                self.problem(path, f"policy {quoted(name)}: {exc}; its options: {expected}")
                return None
        try:
            return factory(**options)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - reported as a problem of the file
            self.problem(path, f"policy {quoted(name)} with options {options}: {error_text(exc)}")
            return None

    def _policy_numbers(self, path: str, options: dict[str, Any]) -> bool:
        """Numeric policy options are finite, and intervals at most a day; False if not."""
        fine = True
        for key, number in options.items():
            if not isinstance(number, float | int) or isinstance(number, bool):
                continue
            if isinstance(number, float) and not math.isfinite(number):
                self.problem(key_path(path, key), f"expected a finite number, got {show(number)}")
                fine = False
            elif key in _INTERVAL_OPTIONS and number > MAX_WAIT_SECONDS:
                self.problem(
                    key_path(path, key),
                    f"expected at most {MAX_WAIT_SECONDS} seconds (one day), got {show(number)}",
                )
                fine = False
        return fine

    def _executor_name(self, path: str, value: Any) -> str | None:
        name = value.get("name") if isinstance(value, dict) and list(value) == ["name"] else value
        if not isinstance(name, str) or not name:
            self.problem(path, f"expected an executor name, got {show(value)}")
            return None
        if name not in self.registries.executors:
            known = ", ".join(self.registries.executors.names()) or "none"
            self.problem(path, f"unknown executor {quoted(name)}; registered executors: {known}")
            return None
        return name


def keys_text(keys: tuple[str, ...]) -> str:
    return ", ".join(keys)
