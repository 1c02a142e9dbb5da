"""``GET /auth/ws``: the reference server's live view of the caller's sessions.

On connect it sends one JSON text message, the body of ``GET /auth/me``. Then, in session
and hybrid modes, it sends ``{"type": "sessions", "sessions": [...]}`` (the body of
``GET /auth/sessions`` with a ``type``) whenever the user's list of live sessions
changed: at once when a change on the bus names the user or one of the listed sessions
(logout of another session, revocation, logout everywhere), and within
``poll_seconds`` for what the bus does not announce (a login elsewhere). Messages from
the client are read and ignored.

The socket closes with 4401 when its own credential is revoked or expires (the middleware
watches it, ``asgi.live``); a handshake without a valid credential is refused (401).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from authstate.asgi.live import live_sockets
from authstate.asgi.middleware import get_principal
from authstate.asgi.websocket import CLOSE_TRY_AGAIN_LATER, refuse_handshake
from authstate.errors import AuthenticationError, StoreUnavailable
from authstate.stores.base import Change, ChangeKind

if TYPE_CHECKING:
    from authstate.asgi.endpoints import AuthEndpoints
    from authstate.principal import Principal

log = logging.getLogger("authstate.http")

# How often a feed re-reads the session list for changes the bus does not carry (logins).
SESSIONS_POLL_SECONDS = 5.0


class SessionFeed:
    """The ``/auth/ws`` endpoint, an ASGI app for a ``WebSocketRoute``."""

    def __init__(self, endpoints: AuthEndpoints, *, poll_seconds: float = SESSIONS_POLL_SECONDS):
        self._endpoints = endpoints
        self._poll_seconds = poll_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        principal = get_principal(websocket)
        try:
            if principal is None:
                raise AuthenticationError(reason="no valid auth cookie")
            first = await self._endpoints.me_body(principal)
        except (AuthenticationError, StoreUnavailable) as exc:
            await refuse_handshake(scope, receive, send, exc)
            return
        await websocket.accept()
        with contextlib.suppress(WebSocketDisconnect):
            await websocket.send_json(first)
            if self._endpoints.auth.settings.mode != "stateless":
                await self._follow_sessions(websocket, principal)
            else:
                await _until_disconnect(websocket)

    async def _follow_sessions(self, websocket: WebSocket, principal: Principal) -> None:
        endpoints = self._endpoints
        changed = asyncio.Event()
        last = await endpoints.sessions_body(principal)
        listed = _handles(last)

        def on_change(change: Change) -> None:
            names_user = change.kind is ChangeKind.USER and change.value == principal.user_id
            if names_user or (change.kind is ChangeKind.SID and change.value in listed):
                changed.set()

        sockets = live_sockets(endpoints.auth)
        await sockets.listen()
        sockets.add_feed(on_change)
        reader = asyncio.get_running_loop().create_task(_until_disconnect(websocket))
        try:
            while not reader.done():
                waiting = asyncio.get_running_loop().create_task(changed.wait())
                await asyncio.wait(
                    {reader, waiting},
                    timeout=self._poll_seconds,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                waiting.cancel()
                if reader.done():
                    break
                changed.clear()
                try:
                    body = await endpoints.sessions_body(principal)
                except StoreUnavailable:
                    await websocket.close(CLOSE_TRY_AGAIN_LATER, "store unavailable")
                    break
                if body != last:
                    last, listed = body, _handles(body)
                    await websocket.send_json({"type": "sessions", **body})
        finally:
            sockets.remove_feed(on_change)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                await reader


async def _until_disconnect(websocket: WebSocket) -> None:
    """Read and drop the client's messages until the socket ends."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


def _handles(body: dict[str, object]) -> set[str]:
    sessions = body.get("sessions")
    if not isinstance(sessions, list):
        return set()
    return {str(s["id"]) for s in sessions if isinstance(s, dict)}
