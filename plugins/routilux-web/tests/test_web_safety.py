"""Safety of ``routilux serve``: loopback by default, tokens, and user data shown as text."""

from __future__ import annotations

import html
import subprocess
import sys

from flows.web_steps import SCRIPT
from web_server import start_server, stop_server

from routilux_kernel.core.job_store import JobQuery
from routilux_kernel.stores.sqlite_store import SqliteJobStore


def test_listening_beyond_loopback_without_a_token_is_refused(filled_store):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "routilux_kernel.cli",
            "serve",
            "--store",
            filled_store,
            "--host",
            "0.0.0.0",
            "--port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in __import__("os").environ.items() if k != "ROUTILUX_WEB_TOKEN"},
    )
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0" in result.stderr
    assert "ROUTILUX_WEB_TOKEN" in result.stderr


def test_with_a_token_every_request_without_it_gets_401(filled_store):
    served = start_server(filled_store, env={"ROUTILUX_WEB_TOKEN": "s3cret"})
    try:
        with served.client() as client:
            answers = {
                path: client.get(path).status_code
                for path in ("/jobs", "/api/jobs", "/static/style.css")
            }
            wrong = client.get("/api/jobs", headers={"authorization": "Bearer nope"})
            bearer = client.get("/api/jobs", headers={"authorization": "Bearer s3cret"})
            post = client.post("/api/jobs", json={"flow_id": "greeting"})
            login = client.get("/jobs?token=s3cret&status=failed")
            cookie = client.get("/api/flows")  # the client kept the cookie login set
    finally:
        stop_server(served)
    assert set(answers.values()) == {401}
    assert wrong.status_code == 401 and post.status_code == 401
    stored = SqliteJobStore(filled_store).query_jobs(JobQuery()).total
    assert bearer.status_code == 200 and bearer.json()["total"] == stored
    assert login.status_code == 303
    assert login.headers["location"] == "/jobs?status=failed"
    assert "HttpOnly" in login.headers["set-cookie"]
    assert cookie.status_code == 200


def test_user_data_and_exception_messages_are_escaped(server):
    escaped = html.escape(SCRIPT, quote=False)
    with server.client() as client:
        failed = client.get("/api/jobs", params={"status": "failed"}).json()["jobs"][0]
        ok = client.get("/api/jobs", params={"flow": "greeting"}).json()["jobs"][0]
        failed_page = client.get(f"/jobs/{failed['job_id']}").text
        ok_page = client.get(f"/jobs/{ok['job_id']}").text
        list_page = client.get("/jobs", params={"status": "failed"}).text
    for page in (failed_page, ok_page, list_page):
        assert SCRIPT not in page
        assert "<script>document" not in page
    assert escaped.replace("'", "&#39;") in failed_page or "&lt;script&gt;" in failed_page
    assert "ValueError: bad input &lt;script&gt;" in failed_page  # the traceback, as text
    assert "&lt;script&gt;document.title" in list_page
    assert "&lt;script&gt;document.title" in ok_page  # the shared data


def test_a_page_post_without_the_csrf_field_is_refused(server):
    with server.client() as client:
        job_id = client.get("/api/jobs").json()["jobs"][0]["job_id"]
        cancel = client.post(f"/jobs/{job_id}/cancel", data={"csrf_token": "forged"})
        start = client.post("/start", data={"flow_id": "greeting", "params": "{}"})
    assert cancel.status_code == start.status_code == 403
    assert "wrong CSRF token" in cancel.text
    assert "carries no CSRF token" in start.text


def test_bad_filters_and_unknown_jobs_on_pages_say_what_is_wrong(server):
    with server.client() as client:
        bad = client.get("/jobs", params={"offset": "-3"})
        missing = client.get("/jobs/<b>nope")
    assert (
        bad.status_code == 400
        and "offset=&#39;-3&#39;: expected a whole number &gt;= 0" in bad.text
    )
    assert (
        missing.status_code == 404
        and "job &#39;&lt;b&gt;nope&#39; is not in job store" in missing.text
    )
