"""The OpenAPI description of ``/api/``, served at ``/api/openapi.json``."""

from __future__ import annotations

from typing import Any

from routilux_web.job_filters import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, STATUSES

_ERROR = {
    "description": "bad input, unknown job or flow, or a refused request",
    "content": {
        "application/json": {
            "schema": {"type": "object", "properties": {"error": {"type": "string"}}}
        }
    },
}
_CSRF = {
    "name": "X-CSRF-Token",
    "in": "header",
    "required": True,
    "description": "the server's CSRF token, from GET /api/csrf",
    "schema": {"type": "string"},
}
_JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
_JOB_SUMMARY = {
    "type": "object",
    "properties": {
        "job_id": {"type": "string"},
        "flow_id": {"type": "string"},
        "status": {"type": "string", "enum": list(STATUSES)},
        "created_at": {"type": "number"},
        "started_at": {"type": ["number", "null"]},
        "finished_at": {"type": ["number", "null"]},
        "error": {"type": ["string", "null"]},
        "owner_pid": {"type": ["integer", "null"]},
        "owner_host": {"type": ["string", "null"]},
        "activations": {"type": "integer"},
    },
}
_FILTERS = [
    {"name": "status", "in": "query", "schema": {"type": "string", "enum": list(STATUSES)}},
    {"name": "flow", "in": "query", "schema": {"type": "string"}, "description": "flow id"},
    {
        "name": "since",
        "in": "query",
        "schema": {"type": "string"},
        "description": "created at or after: epoch seconds or ISO 8601",
    },
    {
        "name": "until",
        "in": "query",
        "schema": {"type": "string"},
        "description": "created before: epoch seconds or ISO 8601",
    },
    {
        "name": "limit",
        "in": "query",
        "schema": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_PAGE_SIZE,
            "default": DEFAULT_PAGE_SIZE,
        },
    },
    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}},
]


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def openapi_document(version: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "routilux-web",
            "version": version,
            "description": "Jobs and flows kept in a routilux job store. With an access token, "
            "send 'Authorization: Bearer TOKEN'; every POST needs the X-CSRF-Token header.",
        },
        "paths": {
            "/api/flows": {
                "get": {
                    "summary": "Every flow that has a stored job, with its definition",
                    "responses": {"200": _json("flows", {"type": "array"})},
                }
            },
            "/api/jobs": {
                "get": {
                    "summary": "Stored jobs, newest first, filtered and paginated",
                    "parameters": _FILTERS,
                    "responses": {
                        "200": _json(
                            "a page of jobs and the number matching",
                            {
                                "type": "object",
                                "properties": {
                                    "jobs": {"type": "array", "items": _JOB_SUMMARY},
                                    "total": {"type": "integer"},
                                    "limit": {"type": "integer"},
                                    "offset": {"type": "integer"},
                                },
                            },
                        ),
                        "400": _ERROR,
                    },
                },
                "post": {
                    "summary": "Start a job of a known flow",
                    "parameters": [_CSRF],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["flow_id"],
                                    "properties": {
                                        "flow_id": {"type": "string"},
                                        "params": {"type": "object"},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "201": _json("the started job", {"type": "object"}),
                        "400": _ERROR,
                        "403": _ERROR,
                        "404": _ERROR,
                    },
                },
            },
            "/api/jobs/{job_id}": {
                "get": {
                    "summary": "One job: the shape of 'routilux jobs show --json'",
                    "parameters": [_JOB_ID],
                    "responses": {"200": _json("the job", {"type": "object"}), "404": _ERROR},
                }
            },
            "/api/jobs/{job_id}/activations": {
                "get": {
                    "summary": "The activations of one job, in commit order",
                    "parameters": [_JOB_ID],
                    "responses": {"200": _json("activations", {"type": "array"}), "404": _ERROR},
                }
            },
            "/api/jobs/{job_id}/cancel": {
                "post": {
                    "summary": "Cancel a job this server runs",
                    "parameters": [_JOB_ID, _CSRF],
                    "responses": {
                        "200": _json("cancelled", {"type": "object"}),
                        "403": _ERROR,
                        "404": _ERROR,
                        "409": _ERROR,
                    },
                }
            },
            "/api/events": {
                "get": {
                    "summary": "Server-sent events: a 'jobs' event each time the running jobs or "
                    "the counts by status change",
                    "parameters": [
                        {"name": "job", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {"200": {"description": "text/event-stream"}},
                }
            },
            "/api/csrf": {
                "get": {
                    "summary": "The CSRF token every POST must carry",
                    "responses": {"200": _json("the token", {"type": "object"})},
                }
            },
        },
    }
