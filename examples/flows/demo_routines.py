"""Routine classes the example flow files name as ``demo_routines:ClassName``.

``routilux run`` finds this module because it adds the flow file's directory to
``sys.path``. Every class is defined at module level so the process executor can send it
to worker processes.
"""

from __future__ import annotations

import re
import sys
import time
from collections import Counter
from typing import Any

from routilux_kernel import Routine
from routilux_kernel.activation_policies import all_slots_ready, immediate

SlotData = dict[str, list[dict[str, Any]]]


# -- the tutorial's parallel fetching (fan-out / fan-in) ------------------------------------


class DataFetcher(Routine):
    """Fetches data from a (simulated) slow source."""

    def __init__(self) -> None:
        super().__init__()
        self.set_config(source_name="Source", delay=0.1)
        self.add_slot("trigger")
        self.add_event("output", ["data", "source"])
        self.set_activation_policy(immediate())

    def logic(self, slot_data: SlotData, policy_message: Any, job_state: Any) -> None:
        source = self.get_config("source_name", "Source")
        time.sleep(self.get_config("delay", 0.1))  # stands in for network latency
        data = f"Data from {source}"
        say(f"[{time.time():.2f}] Fetched: {data}")
        self.emit("output", data=data, source=source)


class ResultCollector(Routine):
    """Collects what every fetcher sends."""

    def __init__(self) -> None:
        super().__init__()
        self.add_slot("input")
        self.set_activation_policy(immediate())

    def logic(self, slot_data: SlotData, policy_message: Any, job_state: Any) -> None:
        for item in slot_data.get("input", []):
            say(f"Collected: {item.get('data')} from {item.get('source')}")
            job_state.shared_log.append(item.get("source"))


# -- a text pipeline: split -> count words in parallel -> join -> report --------------------


class TextSplitter(Routine):
    """Splits the entry ``text`` (or config ``text``) into non-empty lines."""

    def __init__(self) -> None:
        super().__init__()
        self.set_config(text="")
        self.add_slot("trigger")
        self.add_event("lines", ["lines"])

    def logic(self, slot_data: SlotData, policy_message: Any, job_state: Any) -> None:
        for item in slot_data["trigger"]:
            text = item.get("text") or self.get_config("text", "")
            lines = [line.strip() for line in str(text).splitlines() if line.strip()]
            self.emit("lines", lines=lines)


class WordCounter(Routine):
    """Counts the words of its share of the lines: line ``i`` belongs to shard ``i % shards``."""

    def __init__(self) -> None:
        super().__init__()
        self.set_config(shard=0, shards=1, delay=0.05)
        self.add_slot("lines")
        self.add_event("counts", ["counts", "shard"])

    def logic(self, slot_data: SlotData, policy_message: Any, job_state: Any) -> None:
        shard, shards = self.get_config("shard", 0), self.get_config("shards", 1)
        for item in slot_data["lines"]:
            mine = [line for i, line in enumerate(item["lines"]) if i % shards == shard]
            counts = Counter(word for line in mine for word in re.findall(r"[a-z']+", line.lower()))
            time.sleep(self.get_config("delay", 0.05))  # stands in for real work per shard
            self.emit("counts", counts=dict(counts), shard=shard)


class CountMerger(Routine):
    """Joins one result from each of slots a, b and c (all_slots_ready) into one tally."""

    def __init__(self) -> None:
        super().__init__()
        for name in ("a", "b", "c"):
            self.add_slot(name)
        self.add_event("total", ["counts"])
        self.set_activation_policy(all_slots_ready())

    def logic(self, slot_data: SlotData, policy_message: Any, job_state: Any) -> None:
        total: Counter[str] = Counter()
        for items in slot_data.values():
            for item in items:
                total.update(item["counts"])
        self.emit("total", counts=dict(total))


class WordReport(Routine):
    """Prints the most frequent words and keeps the summary in the job's shared_log."""

    def __init__(self) -> None:
        super().__init__()
        self.set_config(top=5)
        self.add_slot("total")

    def logic(self, slot_data: SlotData, policy_message: Any, job_state: Any) -> None:
        for item in slot_data["total"]:
            counts = Counter(item["counts"])
            top = counts.most_common(self.get_config("top", 5))
            words = sum(counts.values())
            ranking = ", ".join(f"{word}×{n}" for word, n in top)
            say(
                f"[job {job_state.job_id}] {words} words, {len(counts)} distinct; "
                f"most frequent: {ranking}"
            )
            job_state.shared_log.append({"words": words, "distinct": len(counts), "top": top})
            job_state.update_routine_state(job_state.current_routine_id, {"words": words})


# -- CPU-bound work for the process executor -----------------------------------------------


class RangeSource(Routine):
    """Emits the entry ``limit`` (or config ``limit``) for the prime counters."""

    def __init__(self) -> None:
        super().__init__()
        self.set_config(limit=100_000)
        self.add_slot("trigger")
        self.add_event("limit", ["limit"])

    def logic(self, slot_data: SlotData, policy_message: Any, job_state: Any) -> None:
        for item in slot_data["trigger"]:
            self.emit("limit", limit=int(item.get("limit") or self.get_config("limit")))


class PrimeCounter(Routine):
    """Counts the primes in its share ``[limit*shard/shards, limit*(shard+1)/shards)``."""

    def __init__(self) -> None:
        super().__init__()
        self.set_config(shard=0, shards=1)
        self.add_slot("limit")
        self.add_event("counts", ["counts"])

    def logic(self, slot_data: SlotData, policy_message: Any, job_state: Any) -> None:
        shard, shards = self.get_config("shard", 0), self.get_config("shards", 1)
        for item in slot_data["limit"]:
            limit = item["limit"]
            low, high = limit * shard // shards, limit * (shard + 1) // shards
            primes = sum(1 for n in range(max(low, 2), high) if _is_prime(n))
            self.emit("counts", counts={"primes": primes, "numbers": high - low})


class PrimeReport(Routine):
    """Prints how many primes the counters found."""

    def __init__(self) -> None:
        super().__init__()
        self.add_slot("total")

    def logic(self, slot_data: SlotData, policy_message: Any, job_state: Any) -> None:
        for item in slot_data["total"]:
            counts = item["counts"]
            say(f"[job {job_state.job_id}] {counts['primes']} primes below {counts['numbers']}")
            job_state.shared_log.append(counts)


def say(line: str) -> None:
    """Print one line in a single write, so lines of concurrent jobs never interleave."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _is_prime(n: int) -> bool:
    if n < 4:
        return n > 1
    if n % 2 == 0:
        return False
    factor = 3
    while factor * factor <= n:
        if n % factor == 0:
            return False
        factor += 2
    return True


# -- error handling ---------------------------------------------------------------------------


class FlakySource(Routine):
    """Fails its first ``failures`` attempts in each job, then emits; shows retry handling."""

    def __init__(self) -> None:
        super().__init__()
        self.set_config(failures=2)
        self.add_slot("trigger")
        self.add_event("output", ["attempts"])

    def logic(self, slot_data: SlotData, policy_message: Any, job_state: Any) -> None:
        routine_id = job_state.current_routine_id
        attempts = job_state.get_routine_state(routine_id, {}).get("attempts", 0) + 1
        job_state.update_routine_state(routine_id, {"attempts": attempts})
        if attempts <= self.get_config("failures", 2):
            raise ConnectionError(f"source unavailable (attempt {attempts})")
        self.emit("output", attempts=attempts)


class Printer(Routine):
    """Prints every item it receives, prefixed by config ``prefix``."""

    def __init__(self) -> None:
        super().__init__()
        self.set_config(prefix="got")
        self.add_slot("input")

    def logic(self, slot_data: SlotData, policy_message: Any, job_state: Any) -> None:
        for item in slot_data["input"]:
            say(f"[job {job_state.job_id}] {self.get_config('prefix')}: {item}")
            job_state.shared_log.append(item)
