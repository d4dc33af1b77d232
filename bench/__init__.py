"""Benchmarks of routilux_kernel against raw concurrent.futures; run ``python -m bench``."""
