"""Every hook a routilux plugin can implement. One function per hook.

Registration hooks hand the plugin a ``register`` callback and fill the registries once per
plugin manager. Lifecycle hooks are called by the scheduler while jobs run; the kernel skips
each one entirely unless a non-built-in plugin implements it. ``docs/plugins.md`` documents
every hook with an example (a test keeps the two in step).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from routilux_kernel.core.markers import PROJECT_NAME, hookimpl, hookspec

if TYPE_CHECKING:
    from routilux_kernel.core.context import ActivationView
    from routilux_kernel.core.error_handling import ActivationFailure, ErrorDecision
    from routilux_kernel.core.flow import Flow
    from routilux_kernel.core.job_state import JobState

__all__ = ["PROJECT_NAME", "Register", "hookimpl", "hookspec"]


class Register(Protocol):
    """The callback a registration hook receives: ``register(name, value, **options)``."""

    def __call__(self, name: str, value: Any, /, **options: Any) -> None: ...


# -- registration: called once per plugin manager, each implementation on its own --------


@hookspec
def register_executors(register: Register) -> None:
    """Register executor factories: ``register(name, factory)``, ``factory(**options)``."""


@hookspec
def register_routines(register: Register) -> None:
    """Register Routine subclasses, built with no arguments: ``register(name, cls)``."""


@hookspec
def register_activation_policies(register: Register) -> None:
    """Register activation policy factories: ``register(name, factory)``; ``factory(**options)``."""


@hookspec
def register_error_strategies(register: Register) -> None:
    """Register error strategies: ``register(name, strategy)`` with ``strategy.decide(failure)``."""


@hookspec
def register_commands(register: Register) -> None:
    """Register CLI sub-commands: ``register(name, run, help=..., add_arguments=None)``."""


@hookspec
def register_job_stores(register: Register) -> None:
    """Register job stores by URL scheme: ``register(scheme, factory)``, ``factory(url)``."""


# -- lifecycle: called while jobs run ---------------------------------------------------


@hookspec
def job_started(job_state: JobState, flow: Flow, entry_params: dict[str, Any]) -> None:
    """Called when a job starts, before its entry routines are activated."""


@hookspec
def job_finished(job_state: JobState, flow: Flow) -> None:
    """Called once when a job reaches completed, failed or cancelled, before waiters wake."""


@hookspec
def routine_started(job_state: JobState, routine_id: str, activation: ActivationView) -> None:
    """Called in the worker before a routine's logic runs for one activation."""


@hookspec
def routine_finished(
    job_state: JobState, routine_id: str, error: BaseException | None, activation: ActivationView
) -> None:
    """Called in the worker after a routine's logic returned (``error`` None) or raised."""


@hookspec
def event_emitted(job_state: JobState, routine_id: str, event: str, data: dict[str, Any]) -> None:
    """Called for every emit, before the data is routed to the connected slots."""


# -- decisions and wrappers -------------------------------------------------------------


@hookspec(firstresult=True)
def decide_error(failure: ActivationFailure) -> ErrorDecision | None:
    """Turn a failed activation into an ErrorDecision; the first non-None answer wins."""


@hookspec(firstresult=True)
def run_activation(activation: ActivationView) -> Any:
    """Run one activation's logic; implement with ``wrapper=True`` to wrap every activation."""


@hookspec
def remote_activation_context(activation: ActivationView) -> dict[str, Any] | None:
    """Return a small picklable dict to ship with a remote activation (``activation.context``)."""


@hookspec
def worker_setup(worker: Any) -> None:
    """Called once in each remote worker process before it runs any activation."""


# -- the command line ---------------------------------------------------------------------


@hookspec
def extend_command(command: str, parser: Any) -> None:
    """Add options to a command another plugin registered (``parser`` is its argparse parser)."""


@hookspec
def run_started(args: Any, runtime: Any, flow: Flow) -> None:
    """Called by ``routilux run`` once its Runtime exists, before the first job starts."""


@hookspec
def run_finished(args: Any, runtime: Any, flow: Flow, job_states: list[JobState]) -> None:
    """Called by ``routilux run`` when its jobs ended (or it was interrupted), before shutdown."""
