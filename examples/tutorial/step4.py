from routilux_kernel import Routine
from routilux_kernel.activation_policies import immediate_policy
from routilux_kernel import Flow
from routilux_kernel.runtime import Runtime
from routilux_kernel.monitoring.flow_registry import FlowRegistry

class ThreadSafeCounter(Routine):
    """Thread-safe counter using JobState"""

    def __init__(self):
        super().__init__()
        self.input = self.add_slot("input")

        def increment(slot_data, policy_message, job_state):
            # Get current routine state from JobState (thread-safe)
            routine_id = job_state.current_routine_id
            state = job_state.get_routine_state(routine_id, {})
            count = state.get("count", 0)

            # Update state in JobState (thread-safe)
            new_count = count + 1
            job_state.update_routine_state(routine_id, {"count": new_count})

            print(f"Count: {new_count}")

        self.set_logic(increment)
        self.set_activation_policy(immediate_policy())

class DataTrigger(Routine):
    """Triggers the counter"""

    def __init__(self):
        super().__init__()
        self.trigger = self.add_slot("trigger")
        self.output = self.add_event("output", ["data"])

        def trigger_counter(slot_data, policy_message, job_state):
            self.emit("output", data="trigger")

        self.set_logic(trigger_counter)
        self.set_activation_policy(immediate_policy())

# Create flow
flow = Flow(flow_id="counter_flow")
counter = ThreadSafeCounter()
trigger = DataTrigger()

counter_id = flow.add_routine(counter, "counter")
trigger_id = flow.add_routine(trigger, "trigger")
flow.connect("trigger", "output", "counter", "input")

# Register
FlowRegistry.get_instance().register_by_name("counter_flow", flow)

# Execute multiple times concurrently
with Runtime(thread_pool_size=5) as runtime:
    job_states = [runtime.exec("counter_flow") for _ in range(5)]
    runtime.wait_until_all_jobs_finished(timeout=5.0)

    # Check final counter state (from last job)
    final_state = job_states[-1].get_routine_state("counter", {})
    print(f"Final count: {final_state.get('count', 0)}")
