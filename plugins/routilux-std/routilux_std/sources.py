"""Sources: read lines, CSV rows or JSON Lines from files, in chunks of ``chunk_size`` records.

``path`` is a path or a glob; ``{job_id}`` and ``{name}`` placeholders are filled from the
job id and the trigger data (``routilux run flow.yaml --param name=...``). Files are read in
sorted order. Every problem names the routine, the file and, for a bad record, the line.
"""

from __future__ import annotations

import csv
import glob
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from routilux_kernel import JobState
from routilux_std.base import StdRoutine
from routilux_std.errors import StdInputError
from routilux_std.expressions import check_template, fill_template
from routilux_std.record_shape import RECORD_PARAMS

SlotData = dict[str, list[dict[str, Any]]]

_SOURCE_SCHEMA: dict[str, dict[str, Any]] = {
    "path": {
        "type": "string",
        "required": True,
        "description": "file path or glob; may use {job_id} and {name} from the trigger data",
    },
    "chunk_size": {
        "type": "integer",
        "default": 1000,
        "description": "records per emitted chunk",
    },
    "encoding": {"type": "string", "default": "utf-8", "description": "text encoding"},
}


class FileSource(StdRoutine):
    """Shared shape of the sources: a ``trigger`` slot, an ``out`` chunk event, ``done``."""

    config_schema = _SOURCE_SCHEMA

    def __init__(self) -> None:
        super().__init__()
        self.add_slot("trigger")
        self.add_event("out", optional=RECORD_PARAMS)
        self.add_event("done", ("files", "records"))

    def logic(self, slot_data: SlotData, policy_message: Any, job_state: JobState) -> None:
        settings = self.settings(job_state)
        who = self.who(job_state)
        size = settings["chunk_size"]
        if size < 1:
            raise StdInputError(f"{who}: config key 'chunk_size' must be >= 1, got {size}")
        triggers = slot_data.get("trigger") or [{}]
        files, total = [], 0
        for trigger in triggers:
            values = {**trigger, "job_id": job_state.job_id}
            for path in self._paths(settings["path"], values, who):
                files.append(str(path))
                chunk: list[Any] = []
                for record in self.read(path, settings, who):
                    chunk.append(record)
                    if len(chunk) >= size:
                        self.emit("out", records=chunk)
                        total += len(chunk)
                        chunk = []
                if chunk:
                    self.emit("out", records=chunk)
                    total += len(chunk)
        self.emit("done", files=files, records=total)

    def _paths(self, template: str, values: dict[str, Any], who: str) -> list[Path]:
        check_template(template, who, "path")
        pattern = fill_template(template, values, who, "path")
        if glob.has_magic(pattern):
            found = sorted(Path(p) for p in glob.glob(pattern) if os.path.isfile(p))
            if not found:
                raise StdInputError(f"{who}: config key 'path': no file matches {pattern!r}")
            return found
        path = Path(pattern)
        if not path.is_file():
            raise StdInputError(f"{who}: config key 'path': file {pattern!r} does not exist")
        return [path]

    def read(self, path: Path, settings: dict[str, Any], who: str) -> Iterator[Any]:
        raise NotImplementedError


class ReadLines(FileSource):
    """Read text files line by line: each line is ``{path, line_number, line}``.

    Lines are emitted in chunks (``out(records=[...])``) of ``chunk_size``; ``done(files,
    records)`` follows the last chunk. The line ending is removed; ``skip_blank`` leaves
    out lines that are empty or whitespace.
    """

    registered_name = "std.read_lines"
    config_schema = {
        **_SOURCE_SCHEMA,
        "skip_blank": {
            "type": "boolean",
            "default": False,
            "description": "leave out empty and whitespace-only lines",
        },
    }

    def read(self, path: Path, settings: dict[str, Any], who: str) -> Iterator[Any]:
        name, skip_blank = str(path), settings["skip_blank"]
        with _open(path, settings["encoding"], who) as handle:
            for number, line in enumerate(handle, 1):
                text = line.rstrip("\r\n")
                if skip_blank and not text.strip():
                    continue
                yield {"path": name, "line_number": number, "line": text}


class ReadCsv(FileSource):
    """Read CSV files with a header row: each row is a dict of column -> string.

    A row with more or fewer fields than the header is an error naming the file and line
    (``strict``, the default), or is padded/trimmed when ``strict`` is false.
    """

    registered_name = "std.read_csv"
    config_schema = {
        **_SOURCE_SCHEMA,
        "delimiter": {"type": "string", "default": ",", "description": "field separator"},
        "strict": {
            "type": "boolean",
            "default": True,
            "description": "a row whose field count differs from the header is an error",
        },
    }

    def read(self, path: Path, settings: dict[str, Any], who: str) -> Iterator[Any]:
        with _open(path, settings["encoding"], who, newline="") as handle:
            reader = csv.reader(handle, delimiter=settings["delimiter"])
            try:
                header = next(reader, None)
                if header is None:
                    return
                for row in reader:
                    if len(row) != len(header):
                        if settings["strict"]:
                            raise StdInputError(
                                f"{who}: {path}, line {reader.line_num}: expected "
                                f"{len(header)} fields ({', '.join(header)}), got {len(row)}"
                            )
                        row = (row + [""] * len(header))[: len(header)]
                    yield dict(zip(header, row, strict=True))
            except csv.Error as exc:
                raise StdInputError(
                    f"{who}: {path}, line {reader.line_num}: unreadable CSV: {exc}"
                ) from None


class ReadJsonLines(FileSource):
    """Read JSON Lines files: each non-blank line is one JSON value (one record)."""

    registered_name = "std.read_jsonl"

    def read(self, path: Path, settings: dict[str, Any], who: str) -> Iterator[Any]:
        with _open(path, settings["encoding"], who) as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise StdInputError(
                        f"{who}: {path}, line {number}: not JSON: {exc.msg} (column {exc.colno})"
                    ) from None


def _open(path: Path, encoding: str, who: str, newline: str | None = None) -> Any:
    try:
        return open(path, encoding=encoding, newline=newline)
    except OSError as exc:
        raise StdInputError(f"{who}: cannot open {path}: {exc.strerror}") from None
