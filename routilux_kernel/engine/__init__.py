"""The engine: Runtime, the per-job scheduler, activations, plans and timers."""
