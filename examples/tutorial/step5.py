from routilux_kernel import Routine, ErrorHandler, ErrorStrategy
from routilux_kernel.activation_policies import immediate_policy
from routilux_kernel import Flow
from routilux_kernel.runtime import Runtime
from routilux_kernel.monitoring.flow_registry import FlowRegistry
import time
import random

class APICaller(Routine):
    """Simulates an API call"""

    def __init__(self):
        super().__init__()
        self.set_config(api_name="API", delay=0.1)
        self.trigger = self.add_slot("trigger")
        self.output = self.add_event("output", ["response", "api_name"])

        def call_api(slot_data, policy_message, job_state):
            delay = self.get_config("delay", 0.1)
            api_name = self.get_config("api_name", "API")
            time.sleep(delay)  # Simulate network delay

            # Simulate occasional failures
            if random.random() < 0.1:  # 10% failure rate
                raise Exception(f"{api_name} temporarily unavailable")

            response = f"Response from {api_name}"
            print(f"[{time.time():.2f}] {response}")
            self.emit("output", response=response, api_name=api_name)

        self.set_logic(call_api)
        self.set_activation_policy(immediate_policy())

    def get_error_handler(self):
        return ErrorHandler(strategy=ErrorStrategy.CONTINUE)

class ResponseAggregator(Routine):
    """Aggregates API responses"""

    def __init__(self):
        super().__init__()
        self.input = self.add_slot("input")

        def aggregate(slot_data, policy_message, job_state):
            input_list = slot_data.get("input", [])
            for item in input_list:
                response = item.get("response", "")
                api_name = item.get("api_name", "unknown")

                # Store in JobState
                job_state.shared_log.append({
                    "api": api_name,
                    "response": response,
                    "timestamp": time.time()
                })

                print(f"Aggregated: {response} from {api_name}")

        self.set_logic(aggregate)
        self.set_activation_policy(immediate_policy())

def main():
    # Create flow
    flow = Flow(flow_id="api_flow")

    # Set error handler at flow level
    flow.set_error_handler(ErrorHandler(strategy=ErrorStrategy.CONTINUE))

    # Add aggregator
    aggregator = ResponseAggregator()
    aggregator_id = flow.add_routine(aggregator, "aggregator")

    # Create and add API callers
    api_names = ["UsersAPI", "OrdersAPI", "ProductsAPI", "InventoryAPI", "AnalyticsAPI"]
    for api_name in api_names:
        caller = APICaller()
        caller.set_config(api_name=api_name, delay=random.uniform(0.05, 0.15))
        caller_id = flow.add_routine(caller, api_name)
        flow.connect(api_name, "output", "aggregator", "input")

    # Register
    FlowRegistry.get_instance().register_by_name("api_flow", flow)

    # Execute all API calls concurrently
    print("Starting parallel API calls...")
    with Runtime(thread_pool_size=10) as runtime:
        start = time.time()

        # Execute multiple jobs (one for each API)
        job_states = [runtime.exec("api_flow") for _ in range(len(api_names))]

        runtime.wait_until_all_jobs_finished(timeout=10.0)
        elapsed = time.time() - start

        print(f"\nCompleted in {elapsed:.2f}s")

        # Check shared log from any job state
        print(f"Total responses: {len(job_states[0].shared_log)}")

if __name__ == "__main__":
    main()
