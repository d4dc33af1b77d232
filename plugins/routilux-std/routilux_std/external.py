"""Routines that reach outside the process: an HTTP request (httpx) and a shell command.

Both are stateless (several may run at once within one job) and turn every failure into an
exception the job's error strategy sees: a non-2xx status, a timeout, a non-zero exit.
httpx is imported by the first request, not when the plugin registers the routine: it costs
more start-up time than the kernel itself, and ``routilux --help`` never needs it.
"""

from __future__ import annotations

import json
import subprocess
from typing import TYPE_CHECKING, Any

from routilux_kernel import JobState
from routilux_std.base import StdRoutine
from routilux_std.errors import (
    HttpRequestFailedError,
    HttpStatusError,
    HttpTimeoutError,
    ShellCommandError,
)
from routilux_std.expressions import check_template, fill_template
from routilux_std.record_shape import incoming

if TYPE_CHECKING:
    import httpx

SlotData = dict[str, list[dict[str, Any]]]


class HttpRequest(StdRoutine):
    """Make one HTTP request per record with httpx; the response is emitted.

    ``url`` (and each header value) is a template: ``{name}`` and ``{a.b}`` are filled from
    the record, ``{job_id}`` from the job. With ``json_body`` the record is sent as the JSON
    body. A status outside 2xx raises ``HttpStatusError`` (a ConnectionError), a timeout
    ``HttpTimeoutError`` (a TimeoutError): give the routine a ``retry`` error handler to retry.
    ``response(record, status, body, headers)``: body is parsed JSON when the response says
    it is JSON, else text.
    """

    registered_name = "std.http_request"
    config_schema = {
        "url": {"type": "string", "required": True, "description": "URL template"},
        "method": {
            "type": "string",
            "default": "GET",
            "enum": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"],
            "description": "HTTP method",
        },
        "headers": {
            "type": "object",
            "default": {},
            "description": "header name -> value template",
        },
        "timeout": {"type": "number", "default": 10.0, "description": "seconds per request"},
        "json_body": {
            "type": "boolean",
            "default": False,
            "description": "send the record as the JSON body",
        },
    }
    allows_concurrency = True

    def __init__(self) -> None:
        super().__init__()
        self.add_slot("in")
        self.add_event("response", ("record", "status", "body", "headers"))

    def _prepare(self, settings: dict[str, Any], job_state: JobState | None) -> dict[str, Any]:
        who = self.who(job_state)
        check_template(settings["url"], who, "url")
        for name, value in settings["headers"].items():
            check_template(str(value), who, f"headers.{name}")
        return settings

    def logic(self, slot_data: SlotData, policy_message: Any, job_state: JobState) -> None:
        import httpx

        settings = self.settings(job_state)
        who = self.who(job_state)
        responses = []
        with httpx.Client(timeout=settings["timeout"]) as client:
            for records, _ in incoming(slot_data, "in"):
                for record in records:
                    responses.append(self._request(client, record, settings, who, job_state.job_id))
        # emitted only once every request succeeded: a retried activation repeats the
        # requests (at least once) but never the emits
        for response in responses:
            self.emit("response", **response)

    def _request(
        self, client: httpx.Client, record: Any, settings: dict[str, Any], who: str, job_id: str
    ) -> dict[str, Any]:
        import httpx

        values = {**(record if isinstance(record, dict) else {}), "job_id": job_id}
        url = fill_template(settings["url"], values, who, "url")
        headers = {
            name: fill_template(str(value), values, who, f"headers.{name}")
            for name, value in settings["headers"].items()
        }
        method = settings["method"]
        body = {"json": record} if settings["json_body"] else {}
        try:
            response = client.request(method, url, headers=headers, **body)
        except httpx.TimeoutException as exc:
            raise HttpTimeoutError(
                f"{who}: {method} {url} timed out after {settings['timeout']}s "
                f"(config key 'timeout'): {type(exc).__name__}"
            ) from None
        except httpx.HTTPError as exc:
            raise HttpRequestFailedError(
                f"{who}: {method} {url} failed: {type(exc).__name__}: {exc}"
            ) from None
        if not response.is_success:
            raise HttpStatusError(
                f"{who}: {method} {url} answered {response.status_code} "
                f"{response.reason_phrase}: {response.text[:200]}"
            )
        return {
            "record": record,
            "status": response.status_code,
            "body": _body(response),
            "headers": dict(response.headers),
        }


def _body(response: httpx.Response) -> Any:
    if "json" in response.headers.get("content-type", ""):
        try:
            return response.json()
        except json.JSONDecodeError:
            pass
    return response.text


class ShellCommand(StdRoutine):
    """Run a command (an argument list, never through a shell) once per record.

    Each argument is a template filled from the record (``{name}``, ``{job_id}``). Exit
    code, stdout and stderr are captured: ``completed(record, exit_code, stdout, stderr)``.
    A non-zero exit (unless ``check`` is false), a timeout or a command that cannot start
    raises ``ShellCommandError`` naming the routine and the command.
    """

    registered_name = "std.shell"
    config_schema = {
        "args": {
            "type": "array",
            "required": True,
            "description": "the command and its arguments, each a template",
        },
        "timeout": {"type": "number", "default": 60.0, "description": "seconds per command"},
        "check": {
            "type": "boolean",
            "default": True,
            "description": "a non-zero exit code is an error",
        },
        "cwd": {
            "type": ["string", "null"],
            "default": None,
            "description": "working directory",
        },
    }
    allows_concurrency = True

    def __init__(self) -> None:
        super().__init__()
        self.add_slot("in")
        self.add_event("completed", ("record", "exit_code", "stdout", "stderr"))

    def _prepare(self, settings: dict[str, Any], job_state: JobState | None) -> dict[str, Any]:
        who = self.who(job_state)
        if not settings["args"]:
            raise ShellCommandError(f"{who}: config key 'args' is empty; give the command")
        for index, argument in enumerate(settings["args"]):
            check_template(str(argument), who, f"args[{index}]")
        return settings

    def logic(self, slot_data: SlotData, policy_message: Any, job_state: JobState) -> None:
        settings = self.settings(job_state)
        who = self.who(job_state)
        results = []
        for records, _ in incoming(slot_data, "in"):
            for record in records:
                values = {
                    **(record if isinstance(record, dict) else {}),
                    "job_id": job_state.job_id,
                }
                args = [
                    fill_template(str(argument), values, who, f"args[{index}]")
                    for index, argument in enumerate(settings["args"])
                ]
                results.append(self._run(args, record, settings, who))
        for result in results:  # after every command succeeded, as for HTTP requests
            self.emit("completed", **result)

    def _run(
        self, args: list[str], record: Any, settings: dict[str, Any], who: str
    ) -> dict[str, Any]:
        shown = " ".join(args)
        try:
            done = subprocess.run(
                args,
                capture_output=True,
                text=True,
                timeout=settings["timeout"],
                cwd=settings["cwd"],
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ShellCommandError(
                f"{who}: command {shown!r} timed out after {settings['timeout']}s "
                "(config key 'timeout')"
            ) from None
        except OSError as exc:
            raise ShellCommandError(
                f"{who}: command {shown!r} could not start: {exc.strerror}"
            ) from None
        if settings["check"] and done.returncode != 0:
            raise ShellCommandError(
                f"{who}: command {shown!r} exited with code {done.returncode}: "
                f"{done.stderr.strip()[:300]}"
            )
        return {
            "record": record,
            "exit_code": done.returncode,
            "stdout": done.stdout,
            "stderr": done.stderr,
        }
