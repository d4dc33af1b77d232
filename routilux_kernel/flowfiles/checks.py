"""Checks shared by every part of a flow file: problems, imports, handlers, policies, executors."""

from __future__ import annotations

import builtins
import importlib
import inspect
from typing import Any

from routilux_kernel.core.error_handling import ErrorHandler, ErrorStrategy
from routilux_kernel.core.errors import FlowValidationError
from routilux_kernel.hooks.registry import Registries

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
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class SpecChecker:
    """Collects problems as ``source: key.path: message`` and turns names into objects."""

    def __init__(self, source: str, registries: Registries, registered_only: bool) -> None:
        self.source = source
        self.registries = registries
        self.registered_only = registered_only
        self.problems: list[str] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(f"{self.source}: {path}: {message}")

    def unknown_keys(self, path: str, mapping: dict[Any, Any], allowed: tuple[str, ...]) -> None:
        for key in mapping:
            if key not in allowed:
                where = f"{path}.{key}" if path else str(key)
                self.problem(where, f"unknown key; expected one of: {keys_text(allowed)}")

    def import_object(self, path: str, spec: str) -> Any:
        """``module:attr.attr`` -> the object, or None after recording why not."""
        if self.registered_only:
            known = ", ".join(self.registries.routines.names()) or "none"
            self.problem(
                path,
                f"{spec!r} would be imported, but module:Class imports are "
                "switched off (--registered-only or registered_only = true); only "
                f"registered names are allowed (registered routines: {known})",
            )
            return None
        module_name, _, attribute = spec.partition(":")
        if not module_name.strip() or not attribute.strip():
            self.problem(path, f"{spec!r}: expected module:Class, e.g. mypackage.routines:Fetch")
            return None
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and (module_name + ".").startswith(exc.name + "."):
                self.problem(
                    path,
                    f"cannot import {spec!r}: no module named {exc.name!r} on "
                    "sys.path (the CLI adds the flow file's directory and the current "
                    "directory)",
                )
            else:
                self.problem(path, f"importing module {module_name!r} failed: {exc}")
            return None
        except Exception as exc:
            self.problem(
                path, f"importing module {module_name!r} raised {type(exc).__name__}: {exc}"
            )
            return None
        for part in attribute.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                self.problem(path, f"module {module_name!r} has no attribute {attribute!r}")
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
                f"unknown error strategy {strategy!r}; registered strategies: {known}",
            )
        options = {k: v for k, v in value.items() if k not in HANDLER_KEYS}
        if builtin:
            self.unknown_keys(path, options, HANDLER_KEYS)
            options = {}
        numbers: dict[str, Any] = {}
        for key, kinds in (
            ("max_retries", int),
            ("retry_delay", (int, float)),
            ("retry_backoff", (int, float)),
        ):
            if key in value:
                number = value[key]
                if isinstance(number, bool) or not isinstance(number, kinds) or number < 0:
                    expected = "an integer" if kinds is int else "a number"
                    self.problem(f"{path}.{key}", f"expected {expected} >= 0, got {show(number)}")
                else:
                    numbers[key] = number
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
                    f"{name!r} is not an exception class; expected a built-in "
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
        if name not in self.registries.activation_policies:
            known = ", ".join(self.registries.activation_policies.names()) or "none"
            self.problem(path, f"unknown activation policy {name!r}; registered policies: {known}")
            return None
        factory = self.registries.activation_policies.get(name)
        if isinstance(options.get("fn"), str):
            options["fn"] = self.import_object(f"{path}.fn", options["fn"])
            if options["fn"] is None:
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
                        f"{path}.{key}",
                        f"unknown option of policy {name!r}; its options: {expected}",
                    )
                return None
            try:
                signature.bind(**options)
            except TypeError as exc:
                self.problem(path, f"policy {name!r}: {exc}; its options: {expected}")
                return None
        try:
            return factory(**options)
        except Exception as exc:
            self.problem(
                path, f"policy {name!r} with options {options}: {type(exc).__name__}: {exc}"
            )
            return None

    def _executor_name(self, path: str, value: Any) -> str | None:
        name = value.get("name") if isinstance(value, dict) and list(value) == ["name"] else value
        if not isinstance(name, str) or not name:
            self.problem(path, f"expected an executor name, got {show(value)}")
            return None
        if name not in self.registries.executors:
            known = ", ".join(self.registries.executors.names()) or "none"
            self.problem(path, f"unknown executor {name!r}; registered executors: {known}")
            return None
        return name


def keys_text(keys: tuple[str, ...]) -> str:
    return ", ".join(keys)


def show(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"
