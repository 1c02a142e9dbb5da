"""A WebSocket client for the black-box tests: the ``websockets`` library, as an application's
non-browser client would use it."""

from __future__ import annotations

import json
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.cli.serve_process import Served


def ws_url(node: Served, path: str = "/auth/ws") -> str:
    return f"ws://127.0.0.1:{node.port}{path}"


def open_socket(
    node: Served,
    cookie: str | None,
    *,
    origin: str | None = "own",
    path: str = "/auth/ws",
    headers: dict[str, str] | None = None,
) -> ClientConnection:
    """Connect to ``path`` with ``cookie`` (and ``headers``); ``origin="own"`` sends the
    node's own origin (what a page of the server sends), None sends none."""
    headers = dict(headers or {})
    if cookie:
        headers["cookie"] = cookie
    if origin == "own":
        origin = node.url
    return connect(
        ws_url(node, path),
        additional_headers=headers,
        origin=origin,  # type: ignore[arg-type]
        open_timeout=10,
        close_timeout=5,
    )


def refused_status(
    node: Served,
    cookie: str | None,
    *,
    origin: str | None = "own",
    headers: dict[str, str] | None = None,
) -> int:
    """The HTTP status a refused handshake gets (fails if the handshake succeeds)."""
    try:
        with open_socket(node, cookie, origin=origin, headers=headers):
            pass
    except InvalidStatus as exc:
        return int(exc.response.status_code)
    raise AssertionError("the handshake was accepted")


def next_json(socket: ClientConnection, timeout: float = 15.0) -> dict[str, Any]:
    message = socket.recv(timeout=timeout)
    assert isinstance(message, str), "a JSON text message"
    body = json.loads(message)
    assert isinstance(body, dict)
    return body


def close_code(socket: ClientConnection, timeout: float = 15.0) -> int | None:
    """Read until the server closes the socket; its close code (fails on a timeout)."""
    try:
        while True:
            socket.recv(timeout=timeout)
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd is not None else None
