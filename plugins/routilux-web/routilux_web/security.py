"""Who may use the dashboard: an optional access token, and CSRF checks on every POST.

With a token, each request must carry it: ``Authorization: Bearer TOKEN``, the cookie set
when a browser first opens a page with ``?token=TOKEN``, or that query parameter itself.
Without it the answer is 401. A POST must also carry the server's CSRF token (header
``X-CSRF-Token`` or form field ``csrf_token``); pages embed it and ``GET /api/csrf`` returns
it. Another site's page can send a POST but cannot read the token, so it cannot forge one.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request

from routilux_web.command_options import TOKEN_ENVIRONMENT_VARIABLE

TOKEN_COOKIE = "routilux_token"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class UnsafeBindError(Exception):
    """The server was asked to listen beyond this machine without an access token."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen on a non-loopback address unless a token protects the server."""
    if not is_loopback(host) and not token:
        raise UnsafeBindError(
            f"refusing to listen on {host}: anyone who can reach it could read every job and "
            f"start or cancel jobs; set {TOKEN_ENVIRONMENT_VARIABLE} or pass --token, or keep "
            "the default --host 127.0.0.1"
        )


def same_secret(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


class TokenMiddleware:
    """Answers 401 to every request that does not carry the access token."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        query_token = request.query_params.get("token")
        if same_secret(query_token, self.token) and request.method == "GET":
            # A browser opened a link with the token: keep it in a cookie, drop it from the URL.
            rest = [
                (k, v)
                for k, v in parse_qsl(scope.get("query_string", b"").decode())
                if k != "token"
            ]
            location = request.url.path + ("?" + urlencode(rest) if rest else "")
            await _answer(
                send,
                303,
                b"",
                [
                    (b"location", location.encode()),
                    (
                        b"set-cookie",
                        f"{TOKEN_COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict".encode(),
                    ),
                ],
            )
            return
        header = request.headers.get("authorization", "")
        bearer = header[7:].strip() if header.lower().startswith("bearer ") else None
        if (
            same_secret(bearer, self.token)
            or same_secret(request.cookies.get(TOKEN_COOKIE), self.token)
            or same_secret(query_token, self.token)
        ):
            await self.app(scope, receive, send)
            return
        body = json.dumps(
            {
                "error": "this dashboard needs its access token: send 'Authorization: Bearer "
                "TOKEN', or open it once with ?token=TOKEN"
            }
        ).encode()
        await _answer(
            send,
            401,
            body,
            [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")],
        )


async def _answer(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def csrf_problem(request: Request, expected: str) -> str | None:
    """Why a POST fails the CSRF check, or None when it carries the server's token."""
    given = request.headers.get(CSRF_HEADER)
    if given is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        field = form.get(CSRF_FIELD)
        given = field if isinstance(field, str) else None
    if given is None:
        return (
            f"this POST carries no CSRF token: send the {CSRF_HEADER} header (GET /api/csrf "
            f"gives it) or the {CSRF_FIELD} form field of the page"
        )
    if not same_secret(given, expected):
        return "this POST carries a wrong CSRF token (the server restarted? reload the page)"
    return None
