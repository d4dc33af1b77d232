"""Router: send each record to the route whose JMESPath condition holds for it."""

from __future__ import annotations

from typing import Any

from routilux_kernel import JobState
from routilux_std.base import StdRoutine
from routilux_std.errors import StdConfigError
from routilux_std.expressions import compile_expression, evaluate
from routilux_std.record_shape import RECORD_PARAMS, incoming, send
from routilux_std.transform import is_truthy

SlotData = dict[str, list[dict[str, Any]]]


class Router(StdRoutine):
    """Route records by JMESPath conditions: first match or every match, else ``default``.

    ``routes`` is a list of ``{name, when}``; each name becomes an event (made when the
    config is set, so a flow file can connect it). ``mode: first`` sends a record to the
    first route whose ``when`` holds, ``all`` to every one; a record no route takes goes
    to ``default``. Chunks stay chunks.
    """

    registered_name = "std.router"
    config_schema = {
        "routes": {
            "type": "array",
            "required": True,
            "description": "list of {name: event name, when: JMESPath condition}",
        },
        "mode": {
            "type": "string",
            "default": "first",
            "enum": ["first", "all"],
            "description": "send to the first matching route, or to every matching route",
        },
    }
    allows_concurrency = True

    def __init__(self) -> None:
        super().__init__()
        self.add_slot("in")
        self.add_event("default", optional=RECORD_PARAMS)

    def _configure(self) -> None:
        routes = self.get_config("routes")
        if not isinstance(routes, list):
            return
        for route in routes:
            name = route.get("name") if isinstance(route, dict) else None
            if isinstance(name, str) and name and name not in self.events:
                self.add_event(name, optional=RECORD_PARAMS)

    def _prepare(self, settings: dict[str, Any], job_state: JobState | None) -> dict[str, Any]:
        who = self.who(job_state)
        compiled = []
        for index, route in enumerate(settings["routes"]):
            if (
                not isinstance(route, dict)
                or set(route) != {"name", "when"}
                or not isinstance(route["name"], str)
            ):
                raise StdConfigError(
                    f"{who}: config key 'routes[{index}]' expected {{name: str, when: "
                    f"JMESPath}}, got {route!r}"
                )
            if route["name"] == "default":
                raise StdConfigError(
                    f"{who}: config key 'routes[{index}].name': 'default' is the event of "
                    "records no route takes; pick another name"
                )
            key = f"routes[{index}].when"
            compiled.append((route["name"], compile_expression(route["when"], who, key), key))
        settings["compiled"] = compiled
        return settings

    def logic(self, slot_data: SlotData, policy_message: Any, job_state: JobState) -> None:
        settings = self.settings(job_state)
        who, first = self.who(job_state), settings["mode"] == "first"
        for records, as_chunk in incoming(slot_data, "in"):
            routed: dict[str, list[Any]] = {}
            for record in records:
                taken = False
                for name, condition, key in settings["compiled"]:
                    if is_truthy(evaluate(condition, record, who, key)):
                        routed.setdefault(name, []).append(record)
                        taken = True
                        if first:
                            break
                if not taken:
                    routed.setdefault("default", []).append(record)
            for name, chosen in routed.items():
                send(self, name, chosen, as_chunk)
