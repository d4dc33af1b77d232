"""The server-rendered pages: flows, jobs, one job, the live view and the start form."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from routilux_web.dashboard_state import dashboard_of
from routilux_web.flow_graph import lay_out
from routilux_web.job_control import JobControlError
from routilux_web.job_filters import STATUSES, FilterError, job_query
from routilux_web.job_views import job_errors, load_details, routine_statuses, timeline
from routilux_web.security import CSRF_FIELD, csrf_problem

TEMPLATES = Path(__file__).parent / "templates"
# Autoescape on for every template: routine names, payloads and tracebacks are user data.
_environment = Environment(
    loader=PackageLoader("routilux_web", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
)


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


def _took(job: dict[str, Any]) -> str:
    if job.get("started_at") is None or job.get("finished_at") is None:
        return "-"
    return f"{(job['finished_at'] - job['started_at']) * 1000:.1f} ms"


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, default=repr, ensure_ascii=False)


_environment.filters.update(when=_when, took=_took, pretty=_pretty)


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    dashboard = dashboard_of(request)
    page = _environment.get_template(template).render(
        request=request, csrf_field=CSRF_FIELD, csrf_token=dashboard.csrf_token, **context
    )
    return HTMLResponse(page, status_code=status)


async def home(request: Request) -> Response:
    return RedirectResponse("/jobs", status_code=303)


async def flows_page(request: Request) -> Response:
    flows = await run_in_threadpool(dashboard_of(request).store.list_flows)
    for flow in flows:
        flow["graph"] = lay_out(flow["flow"])
    return render(request, "flows.html", flows=flows)


async def jobs_page(request: Request) -> Response:
    dashboard = dashboard_of(request)
    try:
        query = job_query(request.query_params)
    except FilterError as exc:
        return render(request, "problem.html", status=400, problem=str(exc))
    page = await run_in_threadpool(dashboard.store.query_jobs, query)
    filters = {k: v for k, v in request.query_params.items() if k != "offset" and v}

    def link(offset: int) -> str:
        return "/jobs?" + urlencode({**filters, "offset": offset})

    pages = max(1, math.ceil(page.total / query.limit))
    return render(
        request,
        "jobs.html",
        jobs=page.jobs,
        total=page.total,
        query=query,
        filters=filters,
        statuses=STATUSES,
        page_number=query.offset // query.limit + 1,
        pages=pages,
        previous=link(max(query.offset - query.limit, 0)) if query.offset > 0 else None,
        next=link(query.offset + query.limit) if query.offset + query.limit < page.total else None,
    )


async def job_page(request: Request) -> Response:
    dashboard = dashboard_of(request)
    job_id = request.path_params["job_id"]
    details = await run_in_threadpool(load_details, dashboard.store, job_id)
    if details is None:
        return render(
            request,
            "problem.html",
            status=404,
            problem=f"job {job_id!r} is not in job store {dashboard.store.url}",
        )
    statuses = routine_statuses(details)
    return render(
        request,
        "job.html",
        job=details,
        graph=lay_out(details.get("flow"), statuses),
        statuses=statuses,
        timeline=timeline(details),
        errors=job_errors(details),
    )


async def live_page(request: Request) -> Response:
    return render(request, "live.html", statuses=STATUSES)


async def start_page(request: Request) -> Response:
    dashboard = dashboard_of(request)
    if request.method == "GET":
        flows = await run_in_threadpool(dashboard.store.list_flows)
        chosen = request.query_params.get("flow", "")
        return render(request, "start.html", flows=flows, chosen=chosen, params="{}", problem=None)
    problem = await csrf_problem(request, dashboard.csrf_token)
    if problem:
        return render(request, "problem.html", status=403, problem=problem)
    form = await request.form()
    flow_id, params_text = str(form.get("flow_id", "")), str(form.get("params", "") or "{}")
    try:
        params = json.loads(params_text)
        job_id = await run_in_threadpool(dashboard.control.start, flow_id, params)
    except (ValueError, JobControlError) as exc:
        status = exc.status if isinstance(exc, JobControlError) else 400
        message = str(exc) if isinstance(exc, JobControlError) else f"params: not JSON: {exc}"
        flows = await run_in_threadpool(dashboard.store.list_flows)
        return render(
            request,
            "start.html",
            status=status,
            flows=flows,
            chosen=flow_id,
            params=params_text,
            problem=message,
        )
    return RedirectResponse(f"/jobs/{job_id}", status_code=303)


async def cancel_from_page(request: Request) -> Response:
    dashboard = dashboard_of(request)
    problem = await csrf_problem(request, dashboard.csrf_token)
    if problem:
        return render(request, "problem.html", status=403, problem=problem)
    job_id = request.path_params["job_id"]
    try:
        await run_in_threadpool(dashboard.control.cancel, job_id)
    except JobControlError as exc:
        return render(request, "problem.html", status=exc.status, problem=str(exc))
    return RedirectResponse(f"/jobs/{job_id}", status_code=303)


ROUTES = [
    Route("/", home),
    Route("/flows", flows_page),
    Route("/jobs", jobs_page),
    Route("/jobs/{job_id}", job_page),
    Route("/jobs/{job_id}/cancel", cancel_from_page, methods=["POST"]),
    Route("/live", live_page),
    Route("/start", start_page, methods=["GET", "POST"]),
]
