"""The tutorial's import path for the activation policies (they live in ``core.policies``)."""

from routilux_kernel.core.policies import *  # noqa: F403 - the whole public surface
from routilux_kernel.core.policies import __all__  # noqa: F401
