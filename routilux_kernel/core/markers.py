"""The pluggy markers of the ``routilux`` project, shared by hookspecs and built-in plugins."""

from __future__ import annotations

import pluggy

PROJECT_NAME = "routilux"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
