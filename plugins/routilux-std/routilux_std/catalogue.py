"""Every std routine class, in the order the reference documents them."""

from __future__ import annotations

from routilux_std.base import StdRoutine
from routilux_std.external import HttpRequest, ShellCommand
from routilux_std.extraction import Extract
from routilux_std.grouping import Aggregate, Batch, Join
from routilux_std.pacing import Debounce, RateLimit
from routilux_std.routing import Router
from routilux_std.sinks import WriteCsv, WriteJsonLines
from routilux_std.sources import ReadCsv, ReadJsonLines, ReadLines
from routilux_std.transform import Filter, Map, Split
from routilux_std.validation import Validate

ROUTINES: tuple[type[StdRoutine], ...] = (
    ReadLines,
    ReadCsv,
    ReadJsonLines,
    WriteJsonLines,
    WriteCsv,
    HttpRequest,
    ShellCommand,
    Map,
    Filter,
    Router,
    Split,
    Batch,
    Join,
    Aggregate,
    Validate,
    Debounce,
    RateLimit,
    Extract,
)
