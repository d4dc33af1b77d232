"""Flow-file data -> Flow: structure, routines, connections and entry, every problem at once."""

from __future__ import annotations

from typing import Any

from routilux_kernel.core.description import config_problems
from routilux_kernel.core.errors import FlowValidationError
from routilux_kernel.core.flow import TRIGGER_SLOT, Flow
from routilux_kernel.core.routine import Routine
from routilux_kernel.flowfiles.checks import FlowFileError, SpecChecker, keys_text
from routilux_kernel.flowfiles.rendering import error_text, key_path, quoted, show

#: Set on routines made from a registered name, so ``flow_to_dict`` writes the name back.
REGISTERED_NAME_ATTRIBUTE = "_routilux_registered_name"

TOP_LEVEL_KEYS = (
    "flow_id",
    "routines",
    "connections",
    "executor",
    "error_handler",
    "entry",
    "params",
)
ROUTINE_KEYS = ("use", "config", "error_handler", "activation_policy", "executor", "concurrency")


def flow_entry(flow: Flow) -> list[str] | None:
    """The ``entry`` routine ids a flow file named, or None (then the flow's defaults apply)."""
    return flow.entry


def flow_params(flow: Flow) -> dict[str, Any]:
    """The default ``params`` (entry data) a flow file gave, else an empty dict."""
    return dict(flow.params)


class FlowReader(SpecChecker):
    """Reads one flow file's data into a Flow."""

    def build(self, data: Any, default_flow_id: str | None) -> Flow:
        if not isinstance(data, dict):
            self.problem(
                "(top level)",
                f"expected a mapping with keys {keys_text(TOP_LEVEL_KEYS)}, got {show(data)}",
            )
            raise FlowFileError(self.problems)
        self.unknown_keys("", data, TOP_LEVEL_KEYS)
        flow_id = data.get("flow_id", default_flow_id)
        if flow_id is not None and (not isinstance(flow_id, str) or not flow_id.strip()):
            self.problem("flow_id", f"expected a non-empty string, got {show(flow_id)}")
            flow_id = default_flow_id
        flow = Flow(flow_id)
        declared = self._routines(flow, data.get("routines"))
        self._connections(flow, data.get("connections", []), declared)
        if "executor" in data:
            self._flow_executor(flow, data["executor"])
        if "error_handler" in data:
            handler = self._error_handler("error_handler", data["error_handler"])
            if handler is not None:
                flow.set_error_handler(handler)
        entry = self._entry(flow, data["entry"], declared) if "entry" in data else None
        params = data.get("params", {})
        if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
            self.problem(
                "params", f"expected a mapping of parameter names to values, got {show(params)}"
            )
        if entry is None and declared and declared == set(flow.routines):
            if not flow.entry_routine_ids():
                self.problem(
                    "entry",
                    f"no entry routine: no routine has a {TRIGGER_SLOT!r} slot "
                    "that no connection feeds; list the routines to start in 'entry'",
                )
        for rid, routine in flow.routines.items():
            if not routine.has_logic:
                self.problem(
                    f"routines.{rid}.use",
                    f"{type(routine).__name__} has no logic: "
                    "it must override logic() or call set_logic()",
                )
        if self.problems:
            raise FlowFileError(self.problems)
        flow.entry = entry
        flow.params = dict(params)
        return flow

    # -- routines ------------------------------------------------------------------------

    def _routines(self, flow: Flow, value: Any) -> set[str]:
        if value is None:
            self.problem(
                "routines",
                "missing: expected a mapping of routine id to "
                "{use: <registered name or module:Class>, config: {...}}",
            )
            return set()
        if not isinstance(value, dict):
            self.problem(
                "routines", f"expected a mapping of routine id to routine, got {show(value)}"
            )
            return set()
        if not value:
            self.problem("routines", "is empty: a flow needs at least one routine")
        declared = set()
        for rid, spec in value.items():
            if not isinstance(rid, str) or not rid.strip() or "->" in rid:
                self.problem(
                    key_path("routines", rid),
                    f"routine id {quoted(rid)} must be a non-empty string without '->'",
                )
                continue
            declared.add(rid)
            routine = self._routine(key_path("routines", rid), spec)
            if routine is not None:
                flow.add_routine(routine, rid)
        return declared

    def _routine(self, path: str, spec: Any) -> Routine | None:
        if isinstance(spec, str):
            spec = {"use": spec}
        if not isinstance(spec, dict):
            self.problem(
                path,
                f"expected a mapping with 'use' (a registered routine name or "
                f"module:Class), got {show(spec)}",
            )
            return None
        self.unknown_keys(path, spec, ROUTINE_KEYS)
        use = spec.get("use")
        routine = None
        if not isinstance(use, str) or not use.strip():
            self.problem(
                f"{path}.use",
                f"missing: expected a registered routine name or module:Class, got {show(use)}",
            )
        else:
            routine = self._create(f"{path}.use", use.strip())
        config = spec.get("config", {})
        if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
            self.problem(
                f"{path}.config",
                f"expected a mapping of config keys to values, got {show(config)}",
            )
            config = {}
        handler = None
        if spec.get("error_handler") is not None:
            handler = self._error_handler(f"{path}.error_handler", spec["error_handler"])
        policy = None
        if spec.get("activation_policy") is not None:
            policy = self._policy(f"{path}.activation_policy", spec["activation_policy"])
        executor = None
        if spec.get("executor") is not None:
            executor = self._executor_name(f"{path}.executor", spec["executor"])
        if routine is None:
            return None
        for key, message in config_problems(routine, config):
            self.problem(f"{path}.config.{key}", message)
        if "concurrency" in spec:
            try:
                routine.set_concurrency(spec["concurrency"])
            except ValueError as exc:
                self.problem(f"{path}.concurrency", str(exc))
        routine.set_config(**config)
        if handler is not None:
            routine.set_error_handler(handler)
        if policy is not None:
            routine.set_activation_policy(policy)
        if executor is not None:
            routine.set_executor(executor)
        return routine

    def _create(self, path: str, use: str) -> Routine | None:
        registered = use in self.registries.routines
        if registered:
            factory = self.registries.routines.get(use)
            if not callable(factory):
                self.problem(
                    path,
                    f"{quoted(use)} is registered as a {type(factory).__name__}, "
                    "expected a Routine subclass",
                )
                return None
        elif ":" in use:
            factory = self.import_object(path, use)
            if factory is None:
                return None
            # Checked before anything is called: `use: os:abort` or `use: builtins:input`
            # must be refused, not run.
            if not (isinstance(factory, type) and issubclass(factory, Routine)):
                what = (
                    f"the class {quoted(factory.__qualname__)}"
                    if isinstance(factory, type)
                    else f"a {type(factory).__name__}"
                )
                self.problem(path, f"{quoted(use)} is {what}, expected a Routine subclass")
                return None
        else:
            known = ", ".join(self.registries.routines.names()) or "none"
            self.problem(
                path,
                f"unknown routine {quoted(use)}; registered routines: {known}; "
                "or name a class to import as module:Class",
            )
            return None
        try:
            routine = factory()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - SystemExit and the like from user code
            self.problem(path, f"creating {quoted(use)} failed: {error_text(exc)}")
            return None
        if not isinstance(routine, Routine):
            self.problem(path, f"{quoted(use)} made a {type(routine).__name__}, expected a Routine")
            return None
        if registered:
            setattr(routine, REGISTERED_NAME_ATTRIBUTE, use)
        return routine

    def _flow_executor(self, flow: Flow, value: Any) -> None:
        options: Any = {}
        if isinstance(value, dict):
            self.unknown_keys("executor", value, ("name", "options"))
            options = value.get("options", {})
            if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
                self.problem(
                    "executor.options",
                    f"expected a mapping of executor options, got {show(options)}",
                )
                options = {}
            value = value.get("name")
        name = self._executor_name("executor", value)
        if name is not None:
            flow.set_executor(name, **options)

    # -- connections and entry -----------------------------------------------------------

    def _connections(self, flow: Flow, value: Any, declared: set[str]) -> None:
        if not isinstance(value, list):
            self.problem(
                "connections",
                f"expected a list of 'source.event -> target.slot' strings, got {show(value)}",
            )
            return
        for index, item in enumerate(value):
            path = f"connections[{index}]"
            parsed = self._connection(path, item)
            if parsed is None:
                continue
            source, event, target, slot = parsed
            missing = [rid for rid in (source, target) if rid not in declared]
            for rid in dict.fromkeys(missing):
                self.problem(
                    path,
                    f"unknown routine {quoted(rid)}; routines in this file: "
                    f"{', '.join(sorted(declared)) or 'none'}",
                )
            if missing or source not in flow.routines or target not in flow.routines:
                continue  # an unknown or broken routine is reported once, where it is
            try:
                flow.connect(source, event, target, slot)
            except FlowValidationError as exc:
                self.problem(path, str(exc).removeprefix(f"flow {flow.flow_id!r}: "))

    def _connection(self, path: str, item: Any) -> tuple[str, str, str, str] | None:
        if isinstance(item, dict):
            self.unknown_keys(path, item, ("from", "to"))
            ends = item.get("from"), item.get("to")
        elif isinstance(item, str):
            left, arrow, right = item.partition("->")
            ends = (left, right) if arrow else (None, None)
        else:
            ends = (None, None)
        parts = []
        for end in ends:
            routine_id, _, name = (
                end.strip().rpartition(".") if isinstance(end, str) else ("", "", "")
            )
            if not routine_id.strip() or not name.strip():
                self.problem(
                    path,
                    "expected 'source.event -> target.slot' or {from: source.event, "
                    f"to: target.slot}}, got {show(item)}",
                )
                return None
            parts += [routine_id.strip(), name.strip()]
        return parts[0], parts[1], parts[2], parts[3]

    def _entry(self, flow: Flow, value: Any, declared: set[str]) -> list[str] | None:
        ids = [value] if isinstance(value, str) else value
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            self.problem(
                "entry", f"expected a routine id or a list of routine ids, got {show(value)}"
            )
            return None
        for index, rid in enumerate(ids):
            path = "entry" if isinstance(value, str) else f"entry[{index}]"
            routine = flow.routines.get(rid)
            if rid not in declared:
                self.problem(
                    path,
                    f"unknown routine {quoted(rid)}; routines in this file: "
                    f"{', '.join(sorted(declared)) or 'none'}",
                )
            elif (
                routine is not None
                and TRIGGER_SLOT not in routine.slots
                and len(routine.slots) != 1
            ):
                self.problem(
                    path,
                    f"entry routine {quoted(rid)} needs a {TRIGGER_SLOT!r} slot or exactly "
                    f"one slot; its slots: {', '.join(routine.slots) or 'none'}",
                )
        return list(ids)
