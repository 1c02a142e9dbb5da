"""Calling an ASGI application directly: one ``GET`` with a ``Cookie`` header (or an
``Authorization`` one, for a Bearer client), no server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import ASGIApp

_BODY = {"type": "http.request", "body": b"", "more_body": False}


def request_scope(path: str, cookie: str, header: str = "cookie") -> dict[str, Any]:
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"user-agent", b"authstate-bench"),
        (b"accept", b"*/*"),
    ]
    if cookie:
        headers.append((header.encode("latin-1"), cookie.encode("latin-1")))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


def caller(
    app: ASGIApp, cookie: str, path: str = "/me", *, header: str = "cookie"
) -> Callable[[], Awaitable[int]]:
    """A coroutine function making one request (a fresh scope each time, as a server
    would) with ``cookie`` in the ``header`` request header; it returns the status code."""
    template = request_scope(path, cookie, header)
    headers = template["headers"]

    async def receive() -> dict[str, Any]:
        return _BODY

    async def call() -> int:
        status = 0

        async def send(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        scope = dict(template)
        scope["headers"] = list(headers)
        scope["state"] = {}
        await app(scope, receive, send)
        return status

    return call
