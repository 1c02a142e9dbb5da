"""``GET /auth/ws``: the reference server's live view of the caller's sessions.

On connect it sends one JSON text message, the body of ``GET /auth/me``. Then, in session
and hybrid modes, it sends ``{"type": "sessions", "sessions": [...]}`` (the body of
``GET /auth/sessions`` with a ``type``) whenever the user's list of live sessions
changed. Every change is seen without polling: a login on any node (``ChangeKind.LOGIN``
on the bus), a revocation naming the user or a listed session (logout of another
session, logout everywhere), the expiry of a listed session (a timer at the earliest
``expires_at`` of the list, which re-reads it: an idle deadline may have moved), and,
after a bus interruption, anything (the list is re-read). Messages from the client are
read and ignored.

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

# Changes whose value is a user id that can change that user's list: logout everywhere
# (and password change, disabled user), a new session anywhere.
_USER_KINDS = frozenset({ChangeKind.USER, ChangeKind.LOGIN})

# The floor of the wait for a listed session's expiry: a list whose earliest deadline has
# already passed (clocks of the nodes apart) is re-read this often, not in a busy loop.
_MIN_EXPIRY_WAIT_SECONDS = 1.0


class SessionFeed:
    """The ``/auth/ws`` endpoint, an ASGI app for a ``WebSocketRoute``."""

    def __init__(self, endpoints: AuthEndpoints):
        self._endpoints = endpoints

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

        def on_change(change: Change | None) -> None:
            if change is None or _may_change_list(change, principal.user_id, listed):
                changed.set()  # None: after a bus interruption, anything may have changed

        sockets = live_sockets(endpoints.auth)
        await sockets.listen()
        sockets.add_feed(on_change)
        reader = asyncio.get_running_loop().create_task(_until_disconnect(websocket))
        try:
            while not reader.done():
                waiting = asyncio.get_running_loop().create_task(changed.wait())
                await asyncio.wait(
                    {reader, waiting},
                    timeout=self._until_first_expiry(last),
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

    def _until_first_expiry(self, body: dict[str, object]) -> float | None:
        """Seconds until the first listed session expires (None: the list is empty)."""
        deadlines = []
        for session in _sessions(body):
            expires_at = session.get("expires_at")
            if isinstance(expires_at, int):
                deadlines.append(expires_at)
        if not deadlines:
            return None
        # ``expires_at`` is rounded down to whole seconds: one more and it is past.
        wait = min(deadlines) + 1 - self._endpoints.auth.clock.now()
        return max(_MIN_EXPIRY_WAIT_SECONDS, wait)


async def _until_disconnect(websocket: WebSocket) -> None:
    """Read and drop the client's messages until the socket ends."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


def _may_change_list(change: Change, user_id: str, listed: set[str]) -> bool:
    """Whether ``change`` can change the session list of ``user_id`` (``listed``: handles)."""
    if change.kind in _USER_KINDS:
        return change.value == user_id
    return change.kind is ChangeKind.SID and change.value in listed


def _sessions(body: dict[str, object]) -> list[dict[str, object]]:
    sessions = body.get("sessions")
    if not isinstance(sessions, list):
        return []
    return [s for s in sessions if isinstance(s, dict)]


def _handles(body: dict[str, object]) -> set[str]:
    return {str(s["id"]) for s in _sessions(body)}
