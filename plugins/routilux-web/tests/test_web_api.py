"""The JSON API of ``routilux serve`` over a store filled by real runs."""

from __future__ import annotations

import json

from web_server import FLOWS, start_server, stop_server

from routilux_kernel.cli import main


def test_flows_lists_every_flow_that_ran_with_its_definition(server):
    with server.client() as client:
        flows = {flow["flow_id"]: flow for flow in client.get("/api/flows").json()}
    assert sorted(flows) == ["exploding", "greeting"]
    assert flows["greeting"]["jobs"] == 3
    assert flows["greeting"]["flow"]["connections"] == ["remember.out -> double.input"]


def test_jobs_filter_by_status_and_flow_and_paginate(server):
    with server.client() as client:
        everything = client.get("/api/jobs").json()
        failed = client.get("/api/jobs", params={"status": "failed"}).json()
        greeting = client.get("/api/jobs", params={"flow": "greeting", "limit": 2}).json()
        second_page = client.get(
            "/api/jobs", params={"flow": "greeting", "limit": 2, "offset": 2}
        ).json()
    assert everything["total"] == 4
    assert [job["flow_id"] for job in failed["jobs"]] == ["exploding"]
    assert "bad input" in failed["jobs"][0]["error"]
    assert (greeting["total"], len(greeting["jobs"]), len(second_page["jobs"])) == (3, 2, 1)
    ids = [job["job_id"] for job in greeting["jobs"] + second_page["jobs"]]
    assert len(set(ids)) == 3
    created = [job["created_at"] for job in everything["jobs"]]
    assert created == sorted(created, reverse=True)


def test_jobs_filter_by_time(server):
    with server.client() as client:
        jobs = client.get("/api/jobs").json()["jobs"]
        newest = jobs[0]["created_at"]
        since = client.get("/api/jobs", params={"since": str(newest)}).json()
        until = client.get("/api/jobs", params={"until": str(newest)}).json()
        later = client.get("/api/jobs", params={"since": "2999-01-01T00:00"}).json()
    assert [job["job_id"] for job in since["jobs"]] == [jobs[0]["job_id"]]
    assert until["total"] == 3
    assert later["total"] == 0


def test_a_bad_filter_is_a_400_naming_the_parameter(server):
    with server.client() as client:
        status = client.get("/api/jobs", params={"status": "exploded"})
        limit = client.get("/api/jobs", params={"limit": "lots"})
        since = client.get("/api/jobs", params={"since": "yesterday"})
    assert status.status_code == limit.status_code == since.status_code == 400
    assert "status='exploded': expected one of pending, running" in status.json()["error"]
    assert "limit='lots': expected a whole number >= 1" in limit.json()["error"]
    assert "since='yesterday': expected epoch seconds or an ISO 8601" in since.json()["error"]


def test_one_job_shows_state_errors_traceback_and_activations(server):
    with server.client() as client:
        failed_id = client.get("/api/jobs", params={"status": "failed"}).json()["jobs"][0]["job_id"]
        ok_id = client.get("/api/jobs", params={"status": "completed"}).json()["jobs"][0]["job_id"]
        failed = client.get(f"/api/jobs/{failed_id}").json()
        ok = client.get(f"/api/jobs/{ok_id}").json()
        activations = client.get(f"/api/jobs/{ok_id}/activations").json()
        missing = client.get("/api/jobs/no-such-job")
    assert failed["status"] == "failed"
    assert "ValueError: bad input" in failed["activations"][0]["traceback"]
    assert ok["routine_states"] == {"double": {"result": 42}}
    assert ok["shared_log"] == ["remembered"]
    assert [row["routine_id"] for row in activations] == ["remember", "double"]
    assert missing.status_code == 404
    assert "job 'no-such-job' is not in job store sqlite:///" in missing.json()["error"]


def test_the_openapi_document_describes_every_api_route(server):
    with server.client() as client:
        document = client.get("/api/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {
        "/api/flows",
        "/api/jobs",
        "/api/jobs/{job_id}",
        "/api/jobs/{job_id}/activations",
        "/api/jobs/{job_id}/cancel",
        "/api/events",
        "/api/csrf",
    }
    assert set(document["paths"]["/api/jobs"]) == {"get", "post"}


def test_the_event_stream_sends_counts_by_status(server):
    with server.client() as client:
        with client.stream("GET", "/api/events") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.iter_lines()
            assert next(lines) == "event: jobs"
            data = json.loads(next(lines).removeprefix("data: "))
    assert data["counts"]["completed"] >= 3
    assert data["counts"]["failed"] >= 1


def test_start_and_cancel_a_job_need_the_csrf_token(tmp_path, wait_until):
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    gate = tmp_path / "gate"
    gate.touch()  # the run that makes the flow known passes its gate at once
    assert main(["run", str(FLOWS / "gated.yaml"), "--param", f"gate={gate}", "--store", url]) == 0
    gate.unlink()
    served = start_server(url)
    try:
        with served.client() as client:
            refused = client.post("/api/jobs", json={"flow_id": "gated"})
            forged = client.post(
                "/api/jobs", json={"flow_id": "gated"}, headers={"x-csrf-token": "guess"}
            )
            csrf = {"x-csrf-token": client.get("/api/csrf").json()["csrf_token"]}
            unknown = client.post("/api/jobs", json={"flow_id": "nope"}, headers=csrf)
            started = client.post(
                "/api/jobs", json={"flow_id": "gated", "params": {"gate": str(gate)}}, headers=csrf
            )
            job_id = started.json()["job_id"]
            assert client.get(f"/api/jobs/{job_id}").json()["status"] == "running"
            no_token_cancel = client.post(f"/api/jobs/{job_id}/cancel")
            cancelled = client.post(f"/api/jobs/{job_id}/cancel", headers=csrf)
            final = wait_until(
                lambda: client.get(f"/api/jobs/{job_id}").json()["status"] == "cancelled",
                what="the cancelled job to be stored",
            )
            again = client.post(f"/api/jobs/{job_id}/cancel", headers=csrf)
            missing = client.post("/api/jobs/no-such-job/cancel", headers=csrf)
    finally:
        stop_server(served)
    assert refused.status_code == forged.status_code == 403
    assert "carries no CSRF token" in refused.json()["error"]
    assert "wrong CSRF token" in forged.json()["error"]
    assert unknown.status_code == 404
    assert "flow 'nope' has no stored job" in unknown.json()["error"]
    assert "known flows: 'gated'" in unknown.json()["error"]
    assert started.status_code == 201
    assert no_token_cancel.status_code == 403
    assert cancelled.json() == {"job_id": job_id, "status": "cancelled"}
    assert final
    assert again.status_code == 409
    assert missing.status_code == 404


def test_a_job_of_another_process_cannot_be_cancelled_here(server):
    with server.client() as client:
        job_id = client.get("/api/jobs", params={"flow": "greeting"}).json()["jobs"][0]["job_id"]
        csrf = {"x-csrf-token": client.get("/api/csrf").json()["csrf_token"]}
        refused = client.post(f"/api/jobs/{job_id}/cancel", headers=csrf)
    assert refused.status_code == 409
    assert "is completed and not run by this server" in refused.json()["error"]


def test_start_runs_the_flow_file_to_completion(server, wait_until):
    with server.client() as client:
        csrf = {"x-csrf-token": client.get("/api/csrf").json()["csrf_token"]}
        started = client.post(
            "/api/jobs", json={"flow_id": "greeting", "params": {"n": 5}}, headers=csrf
        )
        job_id = started.json()["job_id"]
        job = wait_until(
            lambda: (j := client.get(f"/api/jobs/{job_id}").json())["status"] == "completed" and j,
            what="the started job to complete",
        )
        bad_params = client.post(
            "/api/jobs", json={"flow_id": "greeting", "params": [1]}, headers=csrf
        )
    assert job["routine_states"] == {"double": {"result": 10}}
    assert bad_params.status_code == 400
    assert "params must be a JSON object" in bad_params.json()["error"]
