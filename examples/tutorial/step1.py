from routilux_kernel import Routine
from routilux_kernel.activation_policies import immediate_policy
from routilux_kernel import Flow
from routilux_kernel.runtime import Runtime
from routilux_kernel.monitoring.flow_registry import FlowRegistry
import time

class SlowIOOperation(Routine):
    """Simulates a slow I/O operation"""

    def __init__(self):
        super().__init__()
        self.set_config(name="Operation", delay=0.2)
        self.trigger = self.add_slot("trigger")
        self.output = self.add_event("output", ["result"])

        def operate(slot_data, policy_message, job_state):
            delay = self.get_config("delay", 0.2)
            name = self.get_config("name", "Operation")
            time.sleep(delay)  # Simulate I/O
            result = f"{name} completed"
            print(f"[{time.time():.2f}] {result}")
            self.emit("output", result=result)

        self.set_logic(operate)
        self.set_activation_policy(immediate_policy())

# Create flow
flow = Flow(flow_id="io_flow")
op1 = SlowIOOperation()
op1.set_config(name="Operation1", delay=0.2)
op1_id = flow.add_routine(op1, "op1")

# Register
FlowRegistry.get_instance().register_by_name("io_flow", flow)

# Execute with Runtime (thread_pool_size=1 for sequential)
print("=== Sequential-like Execution ===")
with Runtime(thread_pool_size=1) as runtime:
    start = time.time()
    job_state1 = runtime.exec("io_flow")
    job_state2 = runtime.exec("io_flow")
    job_state3 = runtime.exec("io_flow")
    runtime.wait_until_all_jobs_finished(timeout=5.0)
    elapsed = time.time() - start
    print(f"Time with pool_size=1: {elapsed:.2f}s")
