"""The JSON API under ``/api/``: the same data as the pages, described at /api/openapi.json."""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from routilux_web.dashboard_state import dashboard_of
from routilux_web.job_control import JobControlError
from routilux_web.job_filters import FilterError, job_query
from routilux_web.job_views import load_details
from routilux_web.live_updates import event_stream
from routilux_web.openapi import openapi_document
from routilux_web.security import csrf_problem


def error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class _Encoder(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        return repr(o)  # a value kept with ?serializer=pickle that JSON cannot show


class JSONResponseOfAnything(JSONResponse):
    def render(self, content: Any) -> bytes:
        return json.dumps(content, cls=_Encoder, ensure_ascii=False).encode("utf-8")


async def flows(request: Request) -> Response:
    store = dashboard_of(request).store
    return JSONResponseOfAnything(await run_in_threadpool(store.list_flows))


async def jobs(request: Request) -> Response:
    try:
        query = job_query(request.query_params)
    except FilterError as exc:
        return error(str(exc), 400)
    store = dashboard_of(request).store
    started = time.perf_counter()
    page = await run_in_threadpool(store.query_jobs, query)
    took = (time.perf_counter() - started) * 1000
    return JSONResponse(
        {"jobs": page.jobs, "total": page.total, "limit": query.limit, "offset": query.offset},
        headers={"server-timing": f"store;dur={took:.1f}"},
    )


async def one_job(request: Request) -> Response:
    details = await _details(request)
    if isinstance(details, Response):
        return details
    return JSONResponseOfAnything(details)


async def activations(request: Request) -> Response:
    details = await _details(request)
    if isinstance(details, Response):
        return details
    return JSONResponseOfAnything(details["activations"])


async def _details(request: Request) -> dict[str, Any] | Response:
    dashboard = dashboard_of(request)
    job_id = request.path_params["job_id"]
    details = await run_in_threadpool(load_details, dashboard.store, job_id)
    if details is None:
        return error(f"job {job_id!r} is not in job store {dashboard.store.url}", 404)
    return details


async def start_job(request: Request) -> Response:
    dashboard = dashboard_of(request)
    problem = await csrf_problem(request, dashboard.csrf_token)
    if problem:
        return error(problem, 403)
    try:
        body = await request.json()
    except ValueError as exc:
        return error(f"the request body must be JSON: {exc}", 400)
    if not isinstance(body, dict) or not isinstance(body.get("flow_id"), str):
        return error('expected a JSON object {"flow_id": "...", "params": {...}}', 400)
    try:
        job_id = await run_in_threadpool(
            dashboard.control.start, body["flow_id"], body.get("params", {})
        )
    except JobControlError as exc:
        return error(str(exc), exc.status)
    return JSONResponse(
        {"job_id": job_id, "url": f"/jobs/{job_id}"},
        status_code=201,
        headers={"location": f"/api/jobs/{job_id}"},
    )


async def cancel_job(request: Request) -> Response:
    dashboard = dashboard_of(request)
    problem = await csrf_problem(request, dashboard.csrf_token)
    if problem:
        return error(problem, 403)
    job_id = request.path_params["job_id"]
    try:
        await run_in_threadpool(dashboard.control.cancel, job_id)
    except JobControlError as exc:
        return error(str(exc), exc.status)
    return JSONResponse({"job_id": job_id, "status": "cancelled"})


async def events(request: Request) -> Response:
    dashboard = dashboard_of(request)
    stream = event_stream(
        request,
        dashboard.store,
        dashboard.live_interval,
        dashboard.stopping,
        request.query_params.get("job") or None,
    )
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


async def csrf(request: Request) -> Response:
    return JSONResponse({"csrf_token": dashboard_of(request).csrf_token})


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_document(dashboard_of(request).version))


ROUTES = [
    Route("/api/flows", flows),
    Route("/api/jobs", jobs, methods=["GET"]),
    Route("/api/jobs", start_job, methods=["POST"]),
    Route("/api/jobs/{job_id}", one_job),
    Route("/api/jobs/{job_id}/activations", activations),
    Route("/api/jobs/{job_id}/cancel", cancel_job, methods=["POST"]),
    Route("/api/events", events),
    Route("/api/csrf", csrf),
    Route("/api/openapi.json", openapi),
]
