"""WebSocket handshakes and sockets: how a refusal is answered, and a socket the server can
close when its credential is revoked or expires.

Close codes (private range 4000-4999: 4000 + the HTTP status of the same refusal):

- ``4401`` unauthenticated: no valid credential, or the credential was revoked or expired
  while the socket was open;
- ``4403`` forbidden: a foreign ``Origin`` (cross-site WebSocket hijacking) or a missing role;
- ``1013`` try again later: the store cannot tell right now (the HTTP 503).

A refusal *before* accept is an HTTP response when the server offers the ASGI
``websocket.http.response`` extension (uvicorn, so ``authstate serve``; Hypercorn;
Starlette's TestClient): the client sees the same status and JSON body as an HTTP request
(``401 {"error": "unauthenticated"}``, ``403 {"error": "csrf_failed"}``). Without the
extension it is ``websocket.close`` with the code above, which servers answer with a bare
``HTTP 403``: the code never reaches the client before the handshake completed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from authstate.asgi.responses import error_response
from authstate.errors import AuthStateError

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TRY_AGAIN_LATER = 1013
DENIAL_EXTENSION = "websocket.http.response"

log = logging.getLogger("authstate.http")


def close_code(status_code: int) -> int:
    """The close code standing for an HTTP status: 4000 + a 4xx, 1013 for a 5xx."""
    return 4000 + status_code if 400 <= status_code < 500 else CLOSE_TRY_AGAIN_LATER


def can_deny_with_http(scope: Scope) -> bool:
    """Whether the server lets a handshake be refused with a full HTTP response."""
    return DENIAL_EXTENSION in (scope.get("extensions") or {})


async def refuse_handshake(scope: Scope, receive: Receive, send: Send, exc: AuthStateError) -> None:
    """Refuse a WebSocket handshake before accept (see the module for what a client sees)."""
    if can_deny_with_http(scope):
        # Starlette's responses speak the denial extension when the scope is a websocket.
        await error_response(exc)(scope, receive, send)
        return
    log.info("websocket refused: %s: %s", exc.code, exc.reason)
    await send({"type": "websocket.close", "code": close_code(exc.status_code)})


async def refuse_from_app(scope: Scope, receive: Receive, send: Send, exc: AuthStateError) -> None:
    """An application's WebSocket route refused with an ``AuthStateError`` (``require()``):
    refused as a handshake is; once accepted that is impossible, and it closes instead."""
    try:
        await refuse_handshake(scope, receive, send, exc)
    except Exception:
        with contextlib.suppress(Exception):
            await send({"type": "websocket.close", "code": close_code(exc.status_code)})


class SocketClosedByServer(OSError):
    """The application sent on a socket that authstate closed (revoked or expired
    credential). An ``OSError``, as from a client that went away: Starlette's ``WebSocket``
    turns it into ``WebSocketDisconnect``."""


class GuardedSocket:
    """The ``receive`` and ``send`` of one WebSocket connection, with a ``close`` the server
    can call at any time (from a bus listener or a timer).

    Once closed, the application's pending and later ``receive()`` calls return
    ``websocket.disconnect`` with the close code, and its ``send()`` raises
    ``SocketClosedByServer``; the client gets a close frame with that code (or, before
    accept, the server's refusal of the handshake).
    """

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self._closed = asyncio.Event()
        # Resolved by close(): what a pending receive() races against (one per socket,
        # not a waiter task per message).
        self._closed_signal: asyncio.Future[None] | None = None
        self._code = 1000
        self._finished = False  # the app or the client ended it: nothing left to close
        self._pending: asyncio.Future[Message] | None = None
        self._closing: asyncio.Task[None] | None = None

    @property
    def closed_code(self) -> int | None:
        """The code the server closed with, or None while open."""
        return self._code if self._closed.is_set() else None

    async def receive(self) -> Message:
        if not self._closed.is_set():
            if self._pending is None:
                self._pending = asyncio.ensure_future(self._receive())
            pending: asyncio.Future[Message] = self._pending
            if self._closed_signal is None:
                self._closed_signal = asyncio.get_running_loop().create_future()
            signal: asyncio.Future[Any] = self._closed_signal
            await asyncio.wait({pending, signal}, return_when=asyncio.FIRST_COMPLETED)
            if not self._closed.is_set() and pending.done():
                message, self._pending = pending.result(), None
                if message["type"] == "websocket.disconnect":
                    self._finished = True
                return message
        return {"type": "websocket.disconnect", "code": self._code}

    async def send(self, message: Message) -> None:
        if self._closed.is_set():
            raise SocketClosedByServer(f"closed by the server with code {self._code}")
        if message["type"] == "websocket.close":
            self._finished = True
        await self._send(message)

    def close(self, code: int, reason: str = "") -> None:
        """Close the socket with ``code`` (idempotent; returns at once, the close frame is
        sent by a task)."""
        if self._closed.is_set() or self._finished:
            return
        self._code = code
        self._closed.set()
        if self._closed_signal is not None and not self._closed_signal.done():
            self._closed_signal.set_result(None)
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        message: Message = {"type": "websocket.close", "code": code, "reason": reason}
        self._closing = asyncio.get_running_loop().create_task(self._send_close(message))

    async def _send_close(self, message: Message) -> None:
        # The client may be gone already: then there is nobody to tell.
        with contextlib.suppress(Exception):
            await self._send(message)

    async def finish(self) -> None:
        """Wait for a close frame being sent (when the application has returned)."""
        if self._closing is not None:
            await asyncio.wait({self._closing}, timeout=5.0)
        if self._pending is not None:
            self._pending.cancel()


def handshake_own_origin(own: str | None) -> str | None:
    """The HTTP origin a page of this server has, from a handshake's ``ws(s)://host``: a
    browser's ``Origin`` on a WebSocket handshake names the page, which is http(s)."""
    if own is None:
        return None
    scheme, sep, rest = own.partition("://")
    scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    return scheme + sep + rest
