"""Writers: JSON Lines and CSV, written atomically when the job has nothing else to do.

A writer holds the records of its job until the job is idle, then writes them to a
temporary file in the target's directory and renames it over the target (``os.replace``),
so a reader never sees a half-written file and a job that fails writes nothing. ``path``
may use ``{job_id}``. When the same job feeds the writer again after that (another
routine's end-of-job flush), the new records are appended, again through a temporary
file and a rename.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any

from routilux_kernel import JobState
from routilux_std.base import StdRoutine
from routilux_std.errors import StdInputError
from routilux_std.expressions import check_template, fill_template
from routilux_std.policies import AtEndOfJob
from routilux_std.record_shape import incoming

SlotData = dict[str, list[dict[str, Any]]]

_WRITER_SCHEMA: dict[str, dict[str, Any]] = {
    "path": {
        "type": "string",
        "required": True,
        "description": "file to write; may use {job_id}",
    },
    "encoding": {"type": "string", "default": "utf-8", "description": "text encoding"},
    "make_dirs": {
        "type": "boolean",
        "default": True,
        "description": "create the file's directory when it does not exist",
    },
}


class FileWriter(StdRoutine):
    """Shared behaviour: an ``in`` slot held until the job's end; ``written(path, records)``."""

    config_schema = _WRITER_SCHEMA

    def __init__(self) -> None:
        super().__init__()
        self.add_slot("in", max_queue_length=1_000_000)
        self.add_event("written", ("path", "records"))
        self.set_activation_policy(AtEndOfJob(self))

    def logic(self, slot_data: SlotData, policy_message: Any, job_state: JobState) -> None:
        settings = self.settings(job_state)
        who = self.who(job_state)
        check_template(settings["path"], who, "path")
        target = Path(fill_template(settings["path"], {"job_id": job_state.job_id}, who, "path"))
        records = [record for chunk, _ in incoming(slot_data, "in") for record in chunk]
        append = bool((policy_message or {}).get("append")) and target.exists()
        if settings["make_dirs"]:
            target.parent.mkdir(parents=True, exist_ok=True)
        elif not target.parent.is_dir():
            raise StdInputError(
                f"{who}: config key 'path': directory {str(target.parent)!r} does not exist"
            )
        handle = tempfile.NamedTemporaryFile(
            "w",
            encoding=settings["encoding"],
            newline="",
            dir=target.parent,
            prefix=f".{target.name}.",
            suffix=".tmp",
            delete=False,
        )
        try:
            with handle:
                if append:
                    with open(target, encoding=settings["encoding"], newline="") as old:
                        shutil.copyfileobj(old, handle)
                self.write(handle, records, settings, who, append)
            os.replace(handle.name, target)
        except BaseException:
            Path(handle.name).unlink(missing_ok=True)
            raise
        self.emit("written", path=str(target), records=len(records))

    def write(
        self, handle: IO[str], records: list[Any], settings: dict[str, Any], who: str, append: bool
    ) -> None:
        raise NotImplementedError


class WriteJsonLines(FileWriter):
    """Write each record as one line of JSON, atomically, when the job has nothing else to do."""

    registered_name = "std.write_jsonl"

    def write(
        self, handle: IO[str], records: list[Any], settings: dict[str, Any], who: str, append: bool
    ) -> None:
        encode = json.JSONEncoder(ensure_ascii=False).encode
        for index, record in enumerate(records):
            try:
                line = encode(record)
            except TypeError as exc:
                raise StdInputError(
                    f"{who}: record {index} cannot be written as JSON: {exc}"
                ) from None
            handle.write(line + "\n")


class WriteCsv(FileWriter):
    """Write records (objects) as CSV rows with a header, atomically, at the end of the job.

    ``columns`` fixes the header and its order; by default it is the keys of the first
    record. A record with a key outside the columns is an error naming it.
    """

    registered_name = "std.write_csv"
    config_schema = {
        **_WRITER_SCHEMA,
        "columns": {
            "type": ["array", "null"],
            "default": None,
            "description": "header columns in order (default: the first record's keys)",
        },
        "delimiter": {"type": "string", "default": ",", "description": "field separator"},
    }

    def write(
        self, handle: IO[str], records: list[Any], settings: dict[str, Any], who: str, append: bool
    ) -> None:
        columns = settings["columns"]
        if columns is None:
            columns = list(records[0]) if records and isinstance(records[0], dict) else []
        writer = csv.DictWriter(handle, fieldnames=columns, delimiter=settings["delimiter"])
        if not append:
            writer.writeheader()
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                raise StdInputError(
                    f"{who}: record {index} is a {type(record).__name__}, expected an object"
                )
            extra = [key for key in record if key not in columns]
            if extra:
                raise StdInputError(
                    f"{who}: record {index} has key(s) {', '.join(map(repr, extra))} outside "
                    f"the columns {', '.join(columns)}"
                )
            writer.writerow(record)
