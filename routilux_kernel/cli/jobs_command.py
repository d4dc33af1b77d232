"""``routilux jobs list|show|prune|resume``: read and finish the jobs kept in a job store.

Every sub-command takes ``--store URL``; without it the store is the one ``run`` uses
(``ROUTILUX_STORE``, the config file's ``store``, else ``sqlite:///.routilux/runs.db``).
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
import time
from typing import Any

from routilux_kernel.cli.flow_arguments import EXIT_JOB_FAILED, EXIT_OK, CommandInputError
from routilux_kernel.core.flow import Flow
from routilux_kernel.core.job_state import ExecutionStatus
from routilux_kernel.core.job_store import (
    FINAL_STATE_DEFAULTS,
    JobStore,
    JobStoreError,
    StoredJob,
)
from routilux_kernel.engine.recovery import replay
from routilux_kernel.engine.runtime import Runtime
from routilux_kernel.engine.store_choice import CLI_DEFAULT_STORE, configured_store_url, open_store
from routilux_kernel.flowfiles import flow_from_dict
from routilux_kernel.flowfiles.files import load_flow_file
from routilux_kernel.hooks.registry import registries_for

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def store_url(args: argparse.Namespace) -> tuple[str, str]:
    if args.store:
        return args.store, "--store"
    return configured_store_url(CLI_DEFAULT_STORE)


def run(args: argparse.Namespace) -> int:
    url, source = store_url(args)
    try:
        store = open_store(url, registries_for(args.plugin_manager), source)
        handler = {"list": _list, "show": _show, "prune": _prune, "resume": _resume}
        return handler[args.jobs_command](args, store)
    except JobStoreError as exc:
        raise CommandInputError(str(exc)) from None


def _list(args: argparse.Namespace, store: JobStore) -> int:
    if args.limit < 1:
        raise CommandInputError(f"--limit must be >= 1, got {args.limit}")
    jobs = store.list_jobs(args.status, args.flow, args.limit)
    if args.json:
        print(json.dumps(jobs, indent=2))
        return EXIT_OK
    for job in jobs:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job["created_at"]))
        error = f"  {job['error']}" if job["error"] else ""
        print(
            f"{job['job_id']}  {job['flow_id']}  {job['status']}  {created}  "
            f"{job['activations']} activations{error}"
        )
    print(f"{len(jobs)} job{'s' if len(jobs) != 1 else ''} in {store.url}", file=sys.stderr)
    return EXIT_OK


#: The keys of an execution-history entry (ExecutionRecord.to_dict), as activation rows hold them.
_RECORD_KEYS = ("routine_id", "outcome", "started_at", "finished_at", "attempt")


def job_details(store: JobStore, stored: StoredJob) -> dict[str, Any]:
    """``JobState.to_dict`` shape (from the final state, or replayed) plus what was stored."""
    if stored.final_state is not None:
        # kept in the job's columns, or left out while they held their default (see
        # FINAL_STATE_DEFAULTS); a final state stored before that has them all
        details = {
            "job_id": stored.job_id,
            "flow_id": stored.flow_id,
            "status": stored.status,
            "created_at": stored.created_at,
            "started_at": stored.started_at,
            "finished_at": stored.finished_at,
            **copy.deepcopy(FINAL_STATE_DEFAULTS),
            **stored.final_state,
        }
    else:
        replayed = replay(stored, store.codec)
        unconsumed: dict[str, dict[str, list[Any]]] = {}
        for _, routine_id, slot, value in replayed.pending:
            unconsumed.setdefault(routine_id, {}).setdefault(slot, []).append(value)
        details = {
            "job_id": stored.job_id,
            "flow_id": stored.flow_id,
            "status": stored.status,
            "error": stored.error,
            "error_routine_id": None,
            "created_at": stored.created_at,
            "started_at": stored.started_at,
            "finished_at": stored.finished_at,
            "routine_states": replayed.routine_states,
            "shared_data": replayed.shared_data,
            "shared_log": replayed.shared_log,
            "errors": replayed.errors,
            "unconsumed": unconsumed,
            "skipped_routines": sorted(replayed.skipped_routines),
        }
    if "execution_history" not in details:  # kept as the activation rows (see checkpoints)
        details["execution_history"] = [
            {key: row[key] for key in _RECORD_KEYS} for row in stored.activations
        ]
    details["status"] = stored.status
    details["traceback"] = stored.traceback
    details["flow_source"] = stored.flow_source
    details["flow"] = None if stored.flow_snapshot is None else json.loads(stored.flow_snapshot)
    details["entry_items"] = [
        {"item": n, "routine_id": rid, "slot": slot, "data": data}
        for n, rid, slot, data in stored.entry_items
    ]
    details["owner"] = (
        None if stored.owner is None else {"pid": stored.owner.pid, "host": stored.owner.host}
    )
    details["activations"] = [
        {key: value for key, value in row.items() if key != "effects"} for row in stored.activations
    ]
    return details


def _show(args: argparse.Namespace, store: JobStore) -> int:
    stored = store.load_job(args.job_id)
    if stored is None:
        raise CommandInputError(f"job {args.job_id!r} is not in job store {store.url}")
    details = job_details(store, stored)
    if args.json:
        print(json.dumps(details, indent=2, default=repr))
        return EXIT_OK
    print(f"job {stored.job_id}  flow {stored.flow_id}  {stored.status}")
    if stored.error:
        print(f"  error: {stored.error}")
    for key in ("routine_states", "shared_data", "shared_log", "unconsumed"):
        print(f"  {key}: {json.dumps(details.get(key), default=repr)}")
    for row in details["activations"]:
        took = (row["finished_at"] or 0) - (row["started_at"] or 0)
        error = f"  {row['error']}" if row["error"] else ""
        print(
            f"  #{row['number']} {row['routine_id']} {row['outcome']} try {row['attempt']} "
            f"{took * 1000:.1f} ms{error}"
        )
    return EXIT_OK


def parse_age(text: str) -> float:
    match = _DURATION.match(text)
    if match is None:
        raise CommandInputError(
            f"--older-than {text!r}: expected a number and a unit s, m, h, d or w (e.g. 7d)"
        )
    return float(match.group(1)) * _SECONDS[match.group(2)]


def _prune(args: argparse.Namespace, store: JobStore) -> int:
    count = store.prune(time.time() - parse_age(args.older_than))
    print(f"pruned {count} finished job{'s' if count != 1 else ''} from {store.url}")
    return EXIT_OK


def _resume(args: argparse.Namespace, store: JobStore) -> int:
    if not store.durable:
        raise CommandInputError(f"job store {store.url!r} keeps no jobs; nothing to resume")
    pm = args.plugin_manager

    # Jobs of one flow share one Flow: the runtime plans (and checks pickling for) each
    # Flow object once, which is what makes resuming many jobs of a flow fast.
    flows: dict[tuple[str | None, str | None], Flow] = {}

    def flow_for(stored: StoredJob) -> Flow:
        key = (stored.flow_source, stored.flow_snapshot)
        flow = flows.get(key)
        if flow is None:
            flow = flows[key] = _stored_flow(stored, pm)
        return flow

    ids = None if args.interrupted else [args.job_id]
    with Runtime(store=store, plugin_manager=pm) as runtime:
        states = runtime.recover(ids, flow_for=flow_for)
        runtime.wait_until_all_jobs_finished()
    if args.job_id and not states:
        raise CommandInputError(
            f"job {args.job_id!r} cannot be resumed: it is not in {store.url}, finished, or "
            "its owner still runs"
        )
    if args.json:
        print(json.dumps([state.to_dict() for state in states], indent=2, default=repr))
    else:
        for state in states:
            print(f"{state.job_id} {state.status}")
        print(f"resumed {len(states)} job{'s' if len(states) != 1 else ''}", file=sys.stderr)
    failed = [s for s in states if s.status != ExecutionStatus.COMPLETED]
    return EXIT_JOB_FAILED if failed else EXIT_OK


def _stored_flow(stored: StoredJob, pm: Any) -> Flow:
    # The flow file, read again the way run reads it (its folder on sys.path).
    if stored.flow_source is not None:
        return load_flow_file(stored.flow_source, plugin_manager=pm)
    if stored.flow_snapshot is not None:
        return flow_from_dict(json.loads(stored.flow_snapshot), plugin_manager=pm)
    raise CommandInputError(
        f"job {stored.job_id}: flow {stored.flow_id!r} has no stored definition"
    )
