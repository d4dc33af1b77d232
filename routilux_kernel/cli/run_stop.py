"""How ``routilux run`` shuts its runtime down: gracefully, or by force after a signal.

The shutdown itself runs on a helper thread, so the main thread never blocks where a
signal cannot reach it. The first SIGINT/SIGTERM cancels every job and gives running logic
:data:`GRACE_SECONDS` to return (it sees ``job_state.cancel_requested``); a second signal,
or the end of the grace time, forces: executors stop running work (process workers are
killed). Logic that cannot be stopped (a thread stuck in a call) is left behind after
:data:`FORCED_WAIT_SECONDS`, so the command always ends within about two seconds.
"""

from __future__ import annotations

import sys
import threading
import time

from routilux_kernel.cli.interrupts import InterruptWatch, signal_name
from routilux_kernel.cli.progress import ProgressDisplay
from routilux_kernel.core.lazy_logger import logger
from routilux_kernel.engine.runtime import Runtime

#: How long running logic may take to return after the first signal.
GRACE_SECONDS = 0.8
#: How long a forced shutdown is waited for before the command ends without it.
FORCED_WAIT_SECONDS = 0.6


def stop_runtime(runtime: Runtime, interrupts: InterruptWatch, display: ProgressDisplay) -> None:
    """Shut ``runtime`` down; signals received before or meanwhile make it stop sooner."""
    stopped = threading.Event()

    def shut_down() -> None:
        try:
            runtime.shutdown(wait=True)
        except Exception:  # reported, and the command still ends
            logger.opt(exception=True).error("routilux run: the runtime failed to shut down")
        finally:
            stopped.set()
            interrupts.wake()

    threading.Thread(target=shut_down, name="routilux-run-shutdown", daemon=True).start()
    handled = 0
    force_at: float | None = None
    give_up_at: float | None = None
    while not stopped.is_set():
        now = time.monotonic()
        if len(interrupts.signals) > handled:
            if handled == 0:
                display.clear()
                _cancel_jobs(runtime, interrupts.signals[0])
                force_at = now + GRACE_SECONDS
            if len(interrupts.signals) > 1:
                force_at = now
            handled = len(interrupts.signals)
        if force_at is not None and now >= force_at and give_up_at is None:
            _say("stopping running work now")
            runtime.shutdown(wait=False)  # makes the helper's shutdown(wait=True) stop waiting
            give_up_at = now + FORCED_WAIT_SECONDS
        if give_up_at is not None and now >= give_up_at:
            _say("some logic did not return; leaving it behind")
            return
        deadline = give_up_at if give_up_at is not None else force_at
        interrupts.wait(None if deadline is None else max(0.0, deadline - now))


def _cancel_jobs(runtime: Runtime, signum: int) -> None:
    running = [state for state in runtime.list_jobs() if not state.is_finished]
    for state in running:
        runtime.cancel_job(state.job_id)
    _say(
        f"{signal_name(signum)} received: cancelled {len(running)} running job(s); waiting up "
        f"to {GRACE_SECONDS}s for running logic to return (signal again to stop it at once)"
    )


def _say(text: str) -> None:
    print(f"routilux run: {text}", file=sys.stderr, flush=True)
