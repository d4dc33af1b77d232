"""The executor contract: how activations are run (threads, processes, a cluster)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from concurrent.futures import Future


@dataclass(frozen=True)
class ExecutorCapabilities:
    """What an executor can honestly do.

    ``in_process``: logic runs in this interpreter against the live JobState.
    ``pickles``: activations are serialised (routines must pickle).
    ``cancel_running``: ``cancel(future, force=True)`` can stop work already running.
    ``remote``: workers may live on other machines.
    """

    in_process: bool = True
    pickles: bool = False
    cancel_running: bool = False
    remote: bool = False


class Executor(ABC):
    """Runs callables and hands back ``concurrent.futures.Future`` objects.

    Executors are registered by name through the ``register_executors`` hook; the kernel
    never imports a backend's library itself.
    """

    name: str = "executor"
    capabilities: ExecutorCapabilities = ExecutorCapabilities()

    def start(self) -> None:  # noqa: B027 - optional
        """Acquire resources; called once before the first submit."""

    @abstractmethod
    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        """Run ``fn(*args)`` and return its future."""

    def submit_streamed(
        self, fn: Callable[..., Any], on_effects: Callable[[bytes], bytes], /, *args: Any
    ) -> Future[Any]:
        """Run ``fn(*args)`` remotely, streaming what it emits while it runs.

        The kernel's path for remote executors. An executor that can carry messages back
        while the work runs installs ``remote.set_effect_stream`` in the worker, passes
        each batch to ``on_effects`` (on a thread that may block) and returns its reply
        to the worker. The default does not stream: effects come back with the result.
        """
        return self.submit(fn, *args)

    def dispatch(self, fn: Callable[[Any], Any], argument: Any, /) -> None:
        """Run ``fn(argument)`` without a future: the kernel's path for in-process executors.

        The kernel tracks completion itself, so an executor may override this with a cheaper
        path than :meth:`submit`. Exceptions from ``fn`` are the kernel's to handle.
        """
        self.submit(fn, argument)

    def cancel(self, future: Future[Any], force: bool = False) -> bool:
        """Cancel work; True only if it will not run (or, with ``force``, was stopped)."""
        return future.cancel()

    @abstractmethod
    def shutdown(self, wait: bool = True) -> None:
        """Release resources; with ``wait``, after running work finishes."""

    @property
    def max_workers(self) -> int | None:
        """How many activations may run at once, if bounded."""
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} max_workers={self.max_workers}>"
