"""The open WebSockets of one node and the credentials they were opened with.

A socket lives no longer than its credential. Each one is re-checked (``authenticate``
again, which consults the revocation state and, in session mode, the store) whenever the
change bus delivers a change that could revoke it: its token ``jti``, its session or
refresh family handle, its session key, its user's generation (logout everywhere,
password change, disabled user) or roles version (``set_roles``/``set_claims``: a socket
whose roles or claims changed is closed too, so the client reconnects under the new
ones). So a revocation made on any node closes the socket, with code 4401, within the
bus's propagation bound. A timer closes it when the credential expires (the access
token's ``exp``; in session mode the session's absolute or idle expiry, whichever comes
first: when the timer fires the store says whether the session was used since, on any
node, and the timer is set again for its new idle deadline), and after a bus
interruption (the bus reconciles) every socket is re-checked.

An open socket is not use of its session: the handshake is a request like any other
(it may write ``last_seen``), but neither the timer nor a re-check writes it, so a tab
left open does not keep an idle session alive.

While the bus is staler than ``max_staleness`` this node cannot know of revocations:
sockets are closed with 1013 (try again later), as HTTP requests then get 503.

Session-list feeds (``/auth/ws``) subscribe to the same changes with ``add_feed``; after a
bus interruption they are called with ``None`` (anything may have changed).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Coroutine
from dataclasses import replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Receive, Scope, Send

from authstate.asgi.websocket import (
    CLOSE_TRY_AGAIN_LATER,
    CLOSE_UNAUTHENTICATED,
    GuardedSocket,
)
from authstate.crypto.ids import hash_secret
from authstate.errors import AuthenticationError, StoreUnavailable
from authstate.principal import Principal
from authstate.stores.base import Change, ChangeKind, SessionRecord

if TYPE_CHECKING:
    from authstate.auth import AuthCore

log = logging.getLogger("authstate.http")

# Called with each change, or with None after a bus interruption (re-read everything).
FeedListener = Callable[[Change | None], None]


class LiveSocket:
    """One authenticated socket: the principal and credential it was opened with."""

    __slots__ = ("auth_value", "key", "principal", "socket", "timer")

    def __init__(self, socket: GuardedSocket, principal: Principal, auth_value: str) -> None:
        self.socket = socket
        self.principal = principal
        self.auth_value = auth_value
        # What a SESSION change names: the store key of a session ID (session mode).
        self.key = hash_secret(auth_value) if principal.mode == "session" else None
        self.timer: asyncio.TimerHandle | None = None

    def expires_at(self) -> float | None:
        """Unix seconds at which the credential stops being valid, if it says."""
        if self.principal.token is not None:
            return float(self.principal.token.exp)
        if self.principal.session is not None:
            return self.principal.session.expires_at
        return None

    def is_named_by(self, change: Change) -> bool:
        """Whether ``change`` could revoke this socket's credential."""
        principal = self.principal
        if change.kind in (ChangeKind.USER, ChangeKind.ROLES):
            return change.value == principal.user_id
        if change.kind is ChangeKind.SID:
            return principal.session is not None and principal.session.id == change.value
        if change.kind is ChangeKind.JTI:
            return principal.token is not None and principal.token.jti == change.value
        if change.kind is ChangeKind.SESSION:
            return self.key == change.value
        return False


class LiveSockets:
    """The open sockets of one ``AuthState`` on this node (``live_sockets(auth)``)."""

    def __init__(self, auth: AuthCore) -> None:
        self._auth = auth
        self._sockets: set[LiveSocket] = set()
        self._feeds: set[FeedListener] = set()
        # The running parts of ``auth`` this registry listens for: a restarted AuthState
        # (stop, then start) has a new context and a bus without our listener.
        self._listening_for: object = None
        self._listen_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._watchdog: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._sockets)

    async def add(self, live: LiveSocket) -> None:
        """Watch ``live`` until ``remove``; closes it at once if already expired."""
        await self._listen()
        self._sockets.add(live)
        self._arm(live, live.expires_at())
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = asyncio.get_running_loop().create_task(self._watch_freshness())

    def remove(self, live: LiveSocket) -> None:
        self._sockets.discard(live)
        if live.timer is not None:
            live.timer.cancel()
            live.timer = None

    def add_feed(self, listener: FeedListener) -> None:
        """Call ``listener`` with every change the bus delivers (until ``remove_feed``)."""
        self._feeds.add(listener)

    def remove_feed(self, listener: FeedListener) -> None:
        self._feeds.discard(listener)

    async def listen(self) -> None:
        """Subscribe to the bus (done by ``add``; a feed without a socket calls it)."""
        await self._listen()

    async def _listen(self) -> None:
        context = self._auth.context
        if self._listening_for is context:
            return
        async with self._listen_lock:
            if self._listening_for is not context:
                # Registered after the node's own listener: by the time a change reaches
                # here, the revocation state and the session cache have applied it.
                await context.store.listen(self._on_change, reconcile=self._recheck_all)
                self._listening_for = context

    def _arm(self, live: LiveSocket, expires: float | None) -> None:
        """Set ``live``'s expiry timer for ``expires`` (Unix seconds; None: no expiry)."""
        if expires is not None:
            delay = max(0.0, expires - self._auth.clock.now())
            live.timer = asyncio.get_running_loop().call_later(delay, self._expired, live)

    def _on_change(self, change: Change) -> None:
        for live in [live for live in self._sockets if live.is_named_by(change)]:
            self._spawn(self._recheck(live))
        for feed in list(self._feeds):
            try:
                feed(change)
            except Exception:
                log.exception("session feed failed")

    async def _recheck_all(self) -> None:
        for live in list(self._sockets):
            self._spawn(self._recheck(live))
        for feed in list(self._feeds):
            try:
                feed(None)
            except Exception:
                log.exception("session feed failed")

    async def _recheck(self, live: LiveSocket) -> None:
        try:
            now = await self._current(live)
            if now.roles != live.principal.roles or now.claims != live.principal.claims:
                # Live roles (session mode: the same credential, new roles). The socket was
                # authorized under the old ones: the client reconnects under the new.
                raise AuthenticationError(reason="roles or claims changed")
            log.debug("websocket re-checked: its credential stands")
        except AuthenticationError as exc:
            log.info("websocket closed: %s", exc.reason)
            self._close(live, CLOSE_UNAUTHENTICATED, "credential revoked")
        except StoreUnavailable as exc:
            log.warning("websocket closed: %s", exc.reason)
            self._close(live, CLOSE_TRY_AGAIN_LATER, "store unavailable")

    async def _current(self, live: LiveSocket) -> Principal:
        """The socket's credential as it stands now (``AuthenticationError`` if revoked or
        expired). A session is read from the store without recording use."""
        if live.key is None:
            return await self._auth.authenticate(live.auth_value)
        record = self._checked(await self._auth.context.store.get_session(live.key))
        return _principal_of(live.principal, record)

    def _checked(self, record: SessionRecord | None) -> SessionRecord:
        """What session mode's ``authenticate`` checks of a stored record, minus the use."""
        revocation = self._auth.context.revocation
        if record is None or record.kind != "session":
            raise AuthenticationError(reason="unknown session")
        if not record.is_live(self._auth.clock.now()):
            raise AuthenticationError(reason="session expired")
        if record.roles_version < revocation.roles_version(record.user_id):
            raise AuthenticationError(reason="session predates a roles change")
        revocation.check_credential(record.user_id, record.generation, record.handle, None)
        return record

    def _expired(self, live: LiveSocket) -> None:
        live.timer = None
        if live.key is None:  # a token's exp is final
            log.info("websocket closed: credential expired")
            self._close(live, CLOSE_UNAUTHENTICATED, "credential expired")
            return
        # A session's idle deadline moves when it is used (on any node): ask the store.
        self._spawn(self._session_deadline(live))

    async def _session_deadline(self, live: LiveSocket) -> None:
        if live not in self._sockets:
            return
        try:
            record = self._checked(await self._auth.context.store.get_session(live.key or ""))
        except AuthenticationError as exc:
            log.info("websocket closed: %s", exc.reason)
            self._close(live, CLOSE_UNAUTHENTICATED, "credential expired")
            return
        except StoreUnavailable as exc:
            log.warning("websocket closed: %s", exc.reason)
            self._close(live, CLOSE_TRY_AGAIN_LATER, "store unavailable")
            return
        if live in self._sockets and live.timer is None:
            deadline = min(record.expires_at, record.idle_expires_at())
            log.debug("websocket session used since it opened: next check at %.0f", deadline)
            self._arm(live, deadline)

    def _close(self, live: LiveSocket, code: int, reason: str) -> None:
        self.remove(live)
        live.socket.close(code, reason)

    async def _watch_freshness(self) -> None:
        """Close every socket while the bus is stale: this node would miss revocations."""
        freshness = self._auth.context.freshness
        period = max(0.25, self._auth.settings.max_staleness_seconds / 4)
        while self._sockets:
            await asyncio.sleep(period)
            if self._sockets and not freshness.is_fresh():
                log.warning("websockets closed: the invalidation bus is stale")
                for live in list(self._sockets):
                    self._close(live, CLOSE_TRY_AGAIN_LATER, "invalidation bus stale")

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _principal_of(opened: Principal, record: SessionRecord) -> Principal:
    """``opened`` with the roles and claims ``record`` carries now (what a re-check compares)."""
    return replace(opened, roles=record.roles, claims=MappingProxyType(dict(record.claims)))


_BY_AUTH: weakref.WeakKeyDictionary[AuthCore, LiveSockets] = weakref.WeakKeyDictionary()


def live_sockets(auth: AuthCore) -> LiveSockets:
    """The one ``LiveSockets`` of ``auth`` (shared by every middleware and endpoint of it)."""
    live = _BY_AUTH.get(auth)
    if live is None:
        live = _BY_AUTH[auth] = LiveSockets(auth)
    return live


async def serve_watched(
    auth: AuthCore,
    principal: Principal,
    auth_value: str,
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
) -> None:
    """Run ``app`` on an authenticated WebSocket that ``auth`` closes when the credential
    ``auth_value`` (of ``principal``) is revoked or expires."""
    socket = GuardedSocket(receive, send)
    live = LiveSocket(socket, principal, auth_value)
    sockets = live_sockets(auth)
    await sockets.add(live)
    try:
        await app(scope, socket.receive, socket.send)
    except Exception:
        # What an app raises because authstate closed its socket (a send on it, an
        # unhandled WebSocketDisconnect) is the expected end, not an error.
        if socket.closed_code is None:
            raise
        log.debug("websocket app ended after authstate closed it", exc_info=True)
    finally:
        sockets.remove(live)
        await socket.finish()
