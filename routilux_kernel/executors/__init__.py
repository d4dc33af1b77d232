"""Executors: the contract, the thread executor, the process executor and the remote protocol.

Re-exports the contract so ``from routilux_kernel.executors import Executor`` keeps working.
"""

from routilux_kernel.executors.contract import Executor, ExecutorCapabilities

__all__ = ["Executor", "ExecutorCapabilities"]
