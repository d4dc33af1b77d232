from routilux_kernel import Routine
from routilux_kernel.activation_policies import immediate_policy
from routilux_kernel import Flow
from routilux_kernel.runtime import Runtime
from routilux_kernel.monitoring.flow_registry import FlowRegistry
import time

class DataFetcher(Routine):
    """Fetches data from an external source"""

    def __init__(self):
        super().__init__()
        self.set_config(source_name="Source", delay=0.1)
        self.trigger = self.add_slot("trigger")
        self.output = self.add_event("output", ["data", "source"])

        def fetch(slot_data, policy_message, job_state):
            delay = self.get_config("delay", 0.1)
            source_name = self.get_config("source_name", "Source")
            time.sleep(delay)  # Simulate network delay
            data = f"Data from {source_name}"
            print(f"[{time.time():.2f}] Fetched: {data}")
            self.emit("output", data=data, source=source_name)

        self.set_logic(fetch)
        self.set_activation_policy(immediate_policy())

class ResultCollector(Routine):
    """Collects results from multiple fetchers"""

    def __init__(self):
        super().__init__()
        self.input = self.add_slot("input")

        def collect(slot_data, policy_message, job_state):
            input_list = slot_data.get("input", [])
            for item in input_list:
                data = item.get("data", "")
                source = item.get("source", "unknown")
                print(f"Collected: {data} from {source}")

        self.set_logic(collect)
        self.set_activation_policy(immediate_policy())

# Create flow
flow = Flow(flow_id="fetch_flow")

# Add collector (will receive from all fetchers)
collector = ResultCollector()
collector_id = flow.add_routine(collector, "collector")

# Create and add fetchers
for i in range(3):
    fetcher = DataFetcher()
    fetcher.set_config(source_name=f"Source{i}", delay=0.1)
    fetcher_id = flow.add_routine(fetcher, f"fetcher{i}")
    # Connect each fetcher to the same collector
    flow.connect(f"fetcher{i}", "output", "collector", "input")

# Register
FlowRegistry.get_instance().register_by_name("fetch_flow", flow)

# Execute all fetchers concurrently
print("Starting parallel data fetching...")
with Runtime(thread_pool_size=5) as runtime:
    start = time.time()

    # Execute the flow multiple times (one for each fetcher trigger)
    # All executions run concurrently in the thread pool
    job_states = [
        runtime.exec("fetch_flow"),
        runtime.exec("fetch_flow"),
        runtime.exec("fetch_flow")
    ]

    runtime.wait_until_all_jobs_finished(timeout=5.0)
    elapsed = time.time() - start
    print(f"Total time: {elapsed:.2f}s")
