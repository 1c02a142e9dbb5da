"""``AuthMiddleware``: pure ASGI. Authenticates each request from the exact auth cookie
(or, with the ``bearer`` transport, its ``Authorization: Bearer`` header: see
``credentials``), enforces CSRF on unsafe cookie-authenticated requests, and starts/stops
``AuthState`` with the application's lifespan.

The principal is placed in ``scope["authstate.principal"]`` (``None`` when anonymous);
``get_principal(request)`` reads it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authstate.asgi.credentials import Credential, CredentialReader
from authstate.asgi.live import serve_watched
from authstate.asgi.responses import error_response, vary_with
from authstate.asgi.websocket import handshake_own_origin, refuse_from_app, refuse_handshake
from authstate.csrf import SAFE_METHODS
from authstate.errors import AuthenticationError, AuthStateError, PayloadTooLarge, StaleToken
from authstate.principal import Principal

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection

    from authstate.auth import AuthCore

log = logging.getLogger("authstate.http")

PRINCIPAL_KEY = "authstate.principal"
AUTH_VALUE_KEY = "authstate.auth_value"
# "bearer" when the request's credential came in an Authorization header (else absent).
TRANSPORT_KEY = "authstate.transport"
# Set when the auth cookie held a token with outdated roles (``StaleToken``): the request
# is anonymous, and a 401 for it says ``token_stale`` so that the client refreshes.
STALE_KEY = "authstate.token_stale"
# A form body is buffered to read its csrf_token; larger forms are refused rather than read.
MAX_FORM_BYTES = 64 * 1024


def get_principal(conn: HTTPConnection) -> Principal | None:
    """The principal of a request that went through ``AuthMiddleware`` (or None)."""
    principal = conn.scope.get(PRINCIPAL_KEY)
    return principal if isinstance(principal, Principal) else None


def is_bearer_request(conn: HTTPConnection) -> bool:
    """Whether the request's credential came in ``Authorization: Bearer`` (not a cookie)."""
    return conn.scope.get(TRANSPORT_KEY) == "bearer"


def token_was_stale(conn: HTTPConnection) -> bool:
    """Whether the request's auth cookie was refused only for carrying outdated roles."""
    return conn.scope.get(STALE_KEY) is True


def get_auth_value(conn: HTTPConnection) -> str | None:
    """The auth cookie's value this request came with (a JWT or a session ID), or None.

    An application's own login route passes it to ``auth.login(previous_auth=...)`` so
    that the credential the browser held before is retired (session fixation)."""
    value = conn.scope.get(AUTH_VALUE_KEY)
    return value if isinstance(value, str) else None


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def cookie_headers(scope: Scope) -> list[str]:
    return [value.decode("latin-1") for key, value in scope["headers"] if key == b"cookie"]


def own_origin(scope: Scope, *, trust_forwarded: bool = False) -> str | None:
    """This server's origin as the browser sees it (behind a trusted proxy: X-Forwarded-*)."""
    scheme = str(scope.get("scheme", "http"))
    host = header(scope, b"host")
    if trust_forwarded:
        scheme = (header(scope, b"x-forwarded-proto") or scheme).split(",")[0].strip()
        host = (header(scope, b"x-forwarded-host") or host or "").split(",")[0].strip() or None
    if host is None:
        return None
    return f"{scheme}://{host}"


class AuthMiddleware:
    def __init__(self, app: ASGIApp, *, auth: AuthCore, login_path: str = "/auth/login") -> None:
        self.app = app
        self.auth = auth
        self.login_path = login_path
        # The auth cookie, or the Authorization: Bearer header when that transport is on.
        self._bearer = auth.settings.bearer_enabled
        self._credentials = CredentialReader(auth.cookie_policy, bearer=self._bearer)
        self._read = self._credentials.read

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self._lifespan(scope, receive, send)
            elif scope["type"] == "websocket":
                await self._websocket(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        auth = self.auth
        # The node's running parts, read as attributes rather than through the properties
        # ``started`` and ``mode``: two calls less on every request.
        parts = auth._parts
        if parts is None or not auth._started:
            await auth.start()
            mode = auth.mode
        else:
            mode = parts.mode
        try:
            credential = self._read(scope)
            value = credential.value
            principal = None
            if value is not None:
                if credential.transport == "cookie":
                    scope[AUTH_VALUE_KEY] = value
                else:
                    scope[TRANSPORT_KEY] = "bearer"
                try:
                    # Most requests are answered from memory, without a coroutine to await.
                    principal = mode.authenticate_from_memory(value)
                    if principal is None:
                        principal = await mode.authenticate(value)
                except AuthenticationError as exc:
                    _rejected(scope, credential, exc)
            elif credential.transport == "bearer":
                scope[TRANSPORT_KEY] = "bearer"  # a refused Bearer header: anonymous
            scope[PRINCIPAL_KEY] = principal
            # A Bearer header is no ambient credential: a browser never attaches it to a
            # cross-site request, so there is no request forgery to check for.
            if (
                principal is not None
                and credential.transport == "cookie"
                and scope["method"] not in SAFE_METHODS
            ):
                receive = await self._check_csrf(scope, receive, principal)
        except AuthStateError as exc:
            await error_response(exc)(scope, receive, send)
            return
        # The response is wrapped only to add a header: Vary: Cookie when one of our cookies
        # came, the RFC 6750 challenge on a 401 to a (possible) header client. The wrappers
        # are plain functions handing back the awaitable of ``send``: no coroutine more per
        # message.
        if credential.had_cookie:
            # Written out here rather than made by a helper, with the usual case (the app
            # set no Vary) inline: two calls less per request.
            def send_varying(message: Message) -> Awaitable[None]:
                if message["type"] == "http.response.start":
                    headers = message.get("headers", ())
                    if type(headers) is not list:  # any iterable: read once, below
                        headers = list(headers)
                    for key, _ in headers:
                        if len(key) == 4 and key.lower() == b"vary":  # no copy per header
                            return send(_merged_vary(message, list(headers)))
                    message = {**message, "headers": [*headers, _VARY_COOKIE]}
                return send(message)

            reply: Send = send_varying
        elif self._bearer:
            # RFC 6750 §3: a 401 names the scheme a header client should use (with
            # error="invalid_token" when the request's Bearer token was refused).
            if principal is None and credential.transport == "bearer":
                challenge = _CHALLENGE_INVALID
            else:
                challenge = _CHALLENGE

            def send_challenging(message: Message) -> Awaitable[None]:
                if message["type"] == "http.response.start" and message["status"] == 401:
                    message = _with_challenge(message, challenge)
                return send(message)

            reply = send_challenging
        else:
            reply = send
        try:
            await self.app(scope, receive, reply)
        except AuthStateError as exc:
            await _answer_app_refusal(exc, scope, receive, reply)

    async def _check_csrf(self, scope: Scope, receive: Receive, principal: Principal) -> Receive:
        if scope["path"] == self.login_path:
            return receive  # login is checked by Origin / Sec-Fetch-Site in its route
        token = header(scope, b"x-csrf-token")
        content_type = (header(scope, b"content-type") or "").split(";")[0].strip().lower()
        if token is None and content_type == "application/x-www-form-urlencoded":
            body = await _read_body(receive, MAX_FORM_BYTES)
            token = dict(parse_qsl(body.decode("latin-1"))).get("csrf_token")
            receive = _replay(body, receive)
        self.auth.csrf.check_request(
            method=scope["method"],
            origin=header(scope, b"origin"),
            sec_fetch_site=header(scope, b"sec-fetch-site"),
            token=token,
            binding=principal.binding,
            own_origin=own_origin(scope, trust_forwarded=self.auth.settings.trust_forwarded),
        )
        return receive

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket handshake: authenticated from the auth cookie or, with the bearer
        transport, the ``Authorization: Bearer`` header (both at once: 400), as a request
        is. A handshake carrying the cookie must pass the ``Origin`` check first
        (cross-site WebSocket hijacking is CSRF's WebSocket form); an authenticated socket
        is closed when its credential is revoked or expires (``asgi.live``). Refusals and
        close codes: ``asgi.websocket``."""
        auth = self.auth
        if not auth.started:
            await auth.start()
        try:
            credential = self._credentials.read(scope)
            value = credential.value
            if credential.had_cookie:
                # The rules of a cookie-authenticated unsafe request, without the token: a
                # handshake cannot carry one, and every browser sends Origin on it. A
                # Bearer header is no ambient credential: no page can make a browser add it.
                auth.csrf.check_login(
                    origin=header(scope, b"origin"),
                    sec_fetch_site=header(scope, b"sec-fetch-site"),
                    own_origin=handshake_own_origin(
                        own_origin(scope, trust_forwarded=auth.settings.trust_forwarded)
                    ),
                )
            if credential.transport == "bearer":
                scope[TRANSPORT_KEY] = "bearer"
            principal = None
            if value is not None:
                if credential.transport == "cookie":
                    scope[AUTH_VALUE_KEY] = value
                try:
                    principal = await auth.authenticate(value)
                except AuthenticationError as exc:
                    log.info("websocket credential rejected: %s", exc.reason)
            scope[PRINCIPAL_KEY] = principal
        except AuthStateError as exc:
            await refuse_handshake(scope, receive, send, exc)
            return
        try:
            if principal is None or value is None:
                await self.app(scope, receive, send)
            else:
                await serve_watched(auth, principal, value, self.app, scope, receive, send)
        except AuthStateError as exc:
            # require() on a WebSocket route: refused as a handshake is, before accept.
            await refuse_from_app(scope, receive, send, exc)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        auth = self.auth

        async def lifespan_receive() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await auth.start()
            elif message["type"] == "lifespan.shutdown":
                await auth.stop()
            return message

        await self.app(scope, lifespan_receive, send)


_CHALLENGE = (b"www-authenticate", b"Bearer")
_CHALLENGE_INVALID = (b"www-authenticate", b'Bearer error="invalid_token"')


def _with_challenge(message: Message, challenge: tuple[bytes, bytes]) -> Message:
    """The 401 start ``message`` with ``WWW-Authenticate: Bearer`` unless it has one."""
    headers = list(message.get("headers", ()))
    if any(key.lower() == b"www-authenticate" for key, _ in headers):
        return message
    return {**message, "headers": [*headers, challenge]}


def _rejected(scope: Scope, credential: Credential, exc: AuthenticationError) -> None:
    """A credential that did not authenticate: logged (the request goes on, anonymous)."""
    if credential.transport == "cookie":
        log.info("auth cookie rejected: %s", exc.reason)
    else:
        log.info("bearer header rejected: %s", exc.reason)
    if isinstance(exc, StaleToken):
        scope[STALE_KEY] = True


async def _answer_app_refusal(
    exc: AuthStateError, scope: Scope, receive: Receive, send: Send
) -> None:
    """An application's route or dependency refused with an ``AuthStateError``
    (``auth.require()``, ``auth.login_response()``...): answer with the body the ``/auth/*``
    routes give, ``{"error", "detail"}``, and the same status. Once the response has begun
    this is impossible, and the error goes on up as it came."""
    try:
        await error_response(exc)(scope, receive, send)
    except Exception:
        raise exc from None


_VARY_COOKIE = (b"vary", b"Cookie")


def _merged_vary(message: Message, headers: list[tuple[bytes, bytes]]) -> Message:
    """The response start ``message`` (with ``headers``, a copy of its own, one of them a
    ``Vary``) with ``Cookie`` merged into that ``Vary``, unless one of its ``Vary`` headers
    names it (or ``*``) already."""
    first = None
    for index, (key, value) in enumerate(headers):
        if len(key) == 4 and key.lower() == b"vary":
            text = value.decode("latin-1")
            if vary_with(text, "Cookie") == text:
                return {**message, "headers": headers}  # Cookie (or *) is listed already
            if first is None:
                first = index
    if first is None:  # not reached: the caller found one
        return {**message, "headers": [*headers, _VARY_COOKIE]}
    key, value = headers[first]
    headers[first] = (key, vary_with(value.decode("latin-1"), "Cookie").encode("latin-1"))
    return {**message, "headers": headers}


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge("form body too large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, original: Receive) -> Receive:
    """Hand the buffered body to the app once, then the original channel (disconnects)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await original()

    return receive
