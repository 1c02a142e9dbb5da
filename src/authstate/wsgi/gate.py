"""The per-request part of the WSGI adapters, as ``AuthMiddleware`` does it for ASGI:
read the exact auth cookie, establish the principal, and enforce CSRF on unsafe
cookie-authenticated requests (docs/http.md, "CSRF")."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from authstate.bearer import bearer_beside_cookie
from authstate.cookies import MAX_COOKIE_HEADER_BYTES, read_cookie
from authstate.csrf import SAFE_METHODS
from authstate.errors import (
    AuthenticationError,
    PayloadTooLarge,
    PermissionDenied,
    StaleToken,
)

if TYPE_CHECKING:
    from authstate.principal import Principal
    from authstate.wsgi.bridge import SyncAuth
    from authstate.wsgi.http import HttpRequest

log = logging.getLogger("authstate.http")

# A form body is read to find its csrf_token; larger forms are refused (as over ASGI).
MAX_FORM_BYTES = 64 * 1024
# A browser sends the same Cookie header on every request, and what its authstate cookies
# are depends on its bytes only: remember the reading of this many distinct headers
# (emptied when full) of at most this many characters, as the ASGI middleware does.
_READINGS_MAX_ENTRIES = 4096
_READINGS_MAX_HEADER_CHARS = 4096


def check_fresh_argument(fresh: float | None) -> None:
    """``require(fresh=...)`` takes seconds >= 0, as the ASGI ``require`` does."""
    if fresh is not None and (isinstance(fresh, bool) or fresh < 0):
        raise ValueError("fresh must be a number of seconds >= 0")


@dataclass(frozen=True, slots=True)
class Passage:
    """What the gate established for one request."""

    principal: Principal | None
    # The auth cookie's value (for ``login(previous_auth=...)``), or None.
    auth_value: str | None
    # Whether the request carried any of authstate's cookies: its answer varies by Cookie.
    had_cookie: bool
    # The auth cookie held a token with outdated roles (``StaleToken``): the request is
    # anonymous, and a 401 for it says ``token_stale`` so that the client refreshes.
    token_stale: bool = False
    # The credential came in ``Authorization: Bearer`` (no CSRF: no browser sends it
    # ambiently; logout clears no cookie).
    bearer: bool = False
    # ``WWW-Authenticate`` for a 401 (RFC 6750 §3), with the bearer transport on: None
    # when the request is a cookie one.
    challenge: str | None = None


class Gate:
    def __init__(self, sync: SyncAuth, *, login_path: str = "/auth/login") -> None:
        self.sync = sync
        self.login_path = login_path
        self._bearer_enabled = sync.core.settings.bearer_enabled
        # Cookie header -> (auth cookie value or None, any authstate cookie present). Worker
        # threads share it: each get and set is one atomic dict operation.
        self._readings: dict[str, tuple[str | None, bool, str | None]] = {}

    def admit(self, request: HttpRequest) -> Passage:
        """The principal of ``request`` (None when anonymous or its cookie is refused),
        after the CSRF check of an unsafe request. Raises ``CSRFError``,
        ``PayloadTooLarge`` or ``StoreUnavailable``."""
        sync = self.sync
        sync.ensure_started()
        value, had_cookie = self._auth_cookie(request)
        bearer = False
        if self._bearer_enabled:
            authorization = request.header("authorization")
            if authorization is not None:
                # The rule of asgi.credentials (shared): strict Bearer, never beside a cookie.
                bearer, token = bearer_beside_cookie([authorization], had_cookie=had_cookie)
                if bearer:
                    value = token
        principal = None
        stale = False
        if value is not None:
            try:
                principal = sync.authenticate(value)
            except AuthenticationError as exc:
                log.info(
                    "%s rejected: %s", "bearer header" if bearer else "auth cookie", exc.reason
                )
                stale = isinstance(exc, StaleToken)
        # A Bearer header is no ambient credential: a browser never attaches it to a
        # cross-site request, so there is no request forgery to check for.
        if principal is not None and not bearer and request.method not in SAFE_METHODS:
            self._check_csrf(request, principal)
        challenge = None
        if bearer or (self._bearer_enabled and not had_cookie):
            rejected = bearer and principal is None
            challenge = 'Bearer error="invalid_token"' if rejected else "Bearer"
        auth_value = None if bearer else value
        return Passage(principal, auth_value, had_cookie, stale, bearer, challenge)

    @staticmethod
    def required(passage: Passage) -> Principal:
        """The passage's principal, or the refusal the ASGI routes give: 401
        ``token_stale`` for a token with outdated roles, else 401 ``unauthenticated``."""
        if passage.principal is None:
            if passage.token_stale:
                raise StaleToken(reason="roles changed since the token was issued")
            raise AuthenticationError(reason="no valid auth cookie")
        return passage.principal

    def guard(self, passage: Passage, *, role: str | None, fresh: float | None) -> Principal:
        """What ``require(role=..., fresh=...)`` checks, with the ASGI ``require``'s answers:
        401 (``token_stale`` or ``unauthenticated``), 403 without ``role``, 401
        ``reauth_required`` when the last password check is older than ``fresh`` seconds
        (the core's ``require_fresh``). Raises ``AuthStateError``."""
        principal = self.required(passage)
        if role is not None and not principal.has_role(role):
            raise PermissionDenied(f"the role {role!r} is required")
        if fresh is not None:
            self.sync.core.require_fresh(principal, fresh)
        return principal

    def _auth_cookie(self, request: HttpRequest) -> tuple[str | None, bool]:
        raw = request.header("cookie")
        if not raw:
            return None, False
        reading = self._readings.get(raw)
        if reading is None:
            reading = self._read(raw)
            if len(raw) <= _READINGS_MAX_HEADER_CHARS:
                if len(self._readings) >= _READINGS_MAX_ENTRIES:
                    self._readings.clear()
                self._readings[raw] = reading
        value, had_cookie, refused = reading
        if refused is not None:
            # A duplicated or oversized auth cookie: anonymous, whatever the route is.
            log.info("auth cookie refused: %s", refused)
        return value, had_cookie

    def _read(self, raw: str) -> tuple[str | None, bool, str | None]:
        if len(raw) > MAX_COOKIE_HEADER_BYTES:
            raise PayloadTooLarge("cookie header too large")
        policy = self.sync.core.cookie_policy
        try:
            had_refresh = read_cookie(raw, policy.refresh_cookie_name) is not None
            value = read_cookie(raw, policy.auth_cookie_name)
        except AuthenticationError as exc:
            return None, True, exc.reason
        return value, value is not None or had_refresh, None

    def _check_csrf(self, request: HttpRequest, principal: Principal) -> None:
        if request.path == self.login_path:
            return  # login is checked by Origin / Sec-Fetch-Site in its endpoint
        token = request.header("x-csrf-token")
        if token is None and request.is_form:
            body = request.read_body(MAX_FORM_BYTES)
            token = dict(parse_qsl(body.decode("latin-1"))).get("csrf_token")
        core = self.sync.core
        core.csrf.check_request(
            method=request.method,
            origin=request.header("origin"),
            sec_fetch_site=request.header("sec-fetch-site"),
            token=token,
            binding=principal.binding,
            own_origin=request.own_origin(trust_forwarded=core.settings.trust_forwarded),
        )
