"""Which job store a Runtime uses: chosen by URL, the scheme naming a registered store.

Precedence (highest first): ``Runtime(store=...)`` (the CLI's ``--store``),
``ROUTILUX_STORE``, ``store = "..."`` in ``routilux.toml`` or ``[tool.routilux]``, then the
caller's default: ``memory`` for the Python API, ``sqlite:///.routilux/runs.db`` for the CLI.
"""

from __future__ import annotations

import os

from routilux_kernel.core.job_store import JobStore, JobStoreError
from routilux_kernel.engine.config import ConfigError, find_config
from routilux_kernel.hooks.registry import Registries

STORE_ENV = "ROUTILUX_STORE"
MEMORY_STORE = "memory"
#: The CLI's store when nothing else names one (relative to the working directory).
CLI_DEFAULT_STORE = "sqlite:///.routilux/runs.db"


def configured_store_url(default: str = MEMORY_STORE) -> tuple[str, str]:
    """The store URL below code level, and where it came from."""
    from_env = os.environ.get(STORE_ENV, "").strip()
    if from_env:
        return from_env, f"environment variable {STORE_ENV}"
    config = find_config()
    value = config.raw.get("store")
    if value is not None:
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{config.source}: key store must be a store URL, got {value!r}")
        return value.strip(), str(config.source)
    return default, "default"


def open_store(url: str, registries: Registries, source: str = "code") -> JobStore:
    """The store ``url`` names, made by the factory registered for its scheme."""
    if not isinstance(url, str) or not url:
        raise JobStoreError(f"job store URL must be a non-empty string, got {url!r} ({source})")
    scheme = url.partition(":")[0] if ":" in url else url
    try:
        factory = registries.job_stores.get(scheme)
    except LookupError as exc:
        raise JobStoreError(
            f"job store {url!r} (from {source}): {exc}; e.g. memory or sqlite:///runs.db"
        ) from None
    store = factory(url)
    if not isinstance(store, JobStore):
        raise JobStoreError(
            f"job store {scheme!r} made a {type(store).__name__}, not a JobStore ({source})"
        )
    return store
