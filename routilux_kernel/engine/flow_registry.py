"""FlowRegistry: flows by name and by id, so ``Runtime.exec("name")`` can find them."""

from __future__ import annotations

import threading
from typing import ClassVar

from routilux_kernel.core.errors import FlowNotFoundError, FlowValidationError
from routilux_kernel.core.flow import Flow


class FlowRegistry:
    """A thread-safe name -> flow map. ``get_instance()`` is the process-wide one."""

    _instance: ClassVar[FlowRegistry | None] = None
    _instance_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_name: dict[str, Flow] = {}
        self._by_id: dict[str, Flow] = {}

    @classmethod
    def get_instance(cls) -> FlowRegistry:
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def register(self, flow: Flow) -> None:
        """Register ``flow`` under its ``flow_id``."""
        self._check(flow)
        with self._lock:
            self._by_id[flow.flow_id] = flow

    def register_by_name(self, name: str, flow: Flow) -> None:
        """Register ``flow`` under ``name`` (and its id); a later registration replaces it."""
        self._check(flow)
        if not isinstance(name, str) or not name:
            raise FlowValidationError(f"a flow name must be a non-empty string, got {name!r}")
        with self._lock:
            self._by_name[name] = flow
            self._by_id[flow.flow_id] = flow

    def get(self, name_or_id: str) -> Flow | None:
        """The flow registered under this name or id, or None."""
        with self._lock:
            return self._by_name.get(name_or_id) or self._by_id.get(name_or_id)

    def get_by_name(self, name: str) -> Flow | None:
        with self._lock:
            return self._by_name.get(name)

    def require(self, name_or_id: str) -> Flow:
        """Like :meth:`get`, but an unknown name raises listing the registered ones."""
        flow = self.get(name_or_id)
        if flow is None:
            known = ", ".join(repr(n) for n in self.list_names()) or "none"
            raise FlowNotFoundError(
                f"no flow named {name_or_id!r} is registered; registered: {known}"
            )
        return flow

    def list_names(self) -> list[str]:
        with self._lock:
            return sorted(set(self._by_name) | set(self._by_id))

    def unregister(self, name_or_id: str) -> bool:
        with self._lock:
            flow = self._by_name.pop(name_or_id, None) or self._by_id.pop(name_or_id, None)
            if flow is None:
                return False
            self._by_id = {k: v for k, v in self._by_id.items() if v is not flow}
            self._by_name = {k: v for k, v in self._by_name.items() if v is not flow}
            return True

    def clear(self) -> None:
        with self._lock:
            self._by_name.clear()
            self._by_id.clear()

    @staticmethod
    def _check(flow: Flow) -> None:
        if not isinstance(flow, Flow):
            raise FlowValidationError(f"FlowRegistry takes a Flow, got {type(flow).__name__}")
