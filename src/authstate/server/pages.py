"""The HTML pages: ``/`` is a login form for anonymous visitors and a dashboard otherwise.

Failed form posts come back here as well (``render_form_error``), so an error shows as a
message on the page, with the status code the JSON answer would have had. Pages work
without JavaScript: every action is a plain form post carrying the CSRF token.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from authstate.asgi._body import SUBMITTED_KEY
from authstate.asgi.middleware import AUTH_VALUE_KEY, get_principal
from authstate.cookies import read_cookie
from authstate.crypto.jwe import read_encrypted_claims
from authstate.crypto.jwt import parse_compact
from authstate.crypto.keys import KeyRing
from authstate.errors import AuthenticationError, AuthStateError, InvalidToken, StoreUnavailable
from authstate.principal import Principal
from authstate.server.cookie_cost import REPEAT, CookieCost, CookieCosts
from authstate.stores.session_data import size as data_size
from authstate.useragent import describe

if TYPE_CHECKING:
    from authstate.asgi.auth_state import AuthState

log = logging.getLogger("authstate.http")

TEMPLATES = Path(__file__).parent / "templates"
FAVICON = Path(__file__).parent / "static" / "favicon.svg"

# What a person should read for each error code of a failed form post.
_MESSAGES = {
    "invalid_credentials": "Wrong username or password.",
    "unauthenticated": "You are signed out. Please sign in again.",
    "invalid_refresh": "Your session has ended. Please sign in again.",
    "csrf_failed": "This page was out of date, so nothing was changed. Please try again.",
    "not_found": "That session no longer exists.",
    "reauth_required": "Please confirm your password first (below), then try again.",
    "payload_too_large": "That was far too long.",
    "store_unavailable": "The server cannot reach its store right now. Try again in a moment.",
}
_UNITS = (("day", 86400), ("h", 3600), ("min", 60))
_TIME_CLAIMS = frozenset({"iat", "nbf", "exp", "auth_time"})


@dataclass(frozen=True, slots=True)
class ClaimRow:
    name: str
    value: str
    note: str  # a human reading of a time claim, or ""


def format_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def relative_time(timestamp: float, now: float) -> str:
    """``"just now"``, ``"5 min ago"``, ``"in 7 days"``...: a text for any finite delta."""
    delta = timestamp - now
    seconds = abs(delta)
    if seconds < 45:
        return "just now" if delta <= 0 else "in a few seconds"
    # The largest unit that fits; 45 to 59 s fit none and read as "1 min".
    unit, size = next(((u, s) for u, s in _UNITS if seconds >= s), _UNITS[-1])
    count = max(1, round(seconds / size))
    text = f"{count} {unit}{'s' if unit == 'day' and count != 1 else ''}"
    return f"{text} ago" if delta < 0 else f"in {text}"


def duration_text(seconds: int) -> str:
    """``"5 min"``, ``"2 h"``, ``"90 s"``: a setting's duration in its largest whole unit."""
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if unit == 'day' and count != 1 else ''}"
    return f"{seconds} s"


def format_micros(micros: float) -> str:
    """``"0.84 µs"``, ``"13.2 µs"``, ``"412 µs"``, ``"1,250 µs"``: two or three figures."""
    if micros >= 100:
        return f"{micros:,.0f} µs"
    return f"{micros:.1f} µs" if micros >= 10 else f"{micros:.2f} µs"


def message_for(code: str, detail: str, *, retry_after: int, path: str = "") -> str:
    if code == "invalid_credentials" and path.endswith("/password"):
        return "Your current password is not right, so nothing was changed."
    if code == "too_many_attempts":
        minutes = max(1, round(retry_after / 60))
        return f"Too many failed attempts. Try again in about {minutes} min."
    if code == "bad_request":
        # BadRequest details are written for people ("password must be at least 8 ...").
        return detail[:1].upper() + detail[1:] + ("" if detail.endswith(".") else ".")
    return _MESSAGES.get(code, detail)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = format_time
    env.filters["micros"] = format_micros
    return env


def _page_headers(nonce: str) -> dict[str, str]:
    return {
        "Cache-Control": "no-store",
        "Vary": "Cookie",
        # Only our own inline <style> and <script> (by nonce), forms posting back to us, and
        # fetch / WebSocket (/auth/ws: the live session list) to this origin.
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
            "connect-src 'self'; img-src 'self' data:; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
    }


class Pages:
    """Renders the login form and the dashboard for one ``AuthState``."""

    def __init__(self, auth: AuthState) -> None:
        self._auth = auth
        self._env = _environment()
        self._favicon = FAVICON.read_bytes()
        self._costs = CookieCosts(auth)

    def routes(self) -> list[Route]:
        return [
            Route("/", self.home, methods=["GET"]),
            Route("/favicon.ico", self.favicon, methods=["GET"]),
        ]

    async def home(self, request: Request) -> Response:
        return await self.render(request)

    async def favicon(self, request: Request) -> Response:
        # Browsers ask for /favicon.ico on every page; a 404 there is a console error.
        return Response(
            self._favicon,
            media_type="image/svg+xml",
            headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
        )

    async def render_form_error(
        self, request: Request, status: int, code: str, detail: str
    ) -> Response:
        """The ``form_renderer`` hook of the auth router: the page, with the error on it."""
        retry_after = self._auth.settings.login_window_seconds
        headers = {"Retry-After": str(retry_after)} if status == 429 else {}
        message = message_for(code, detail, retry_after=retry_after, path=request.url.path)
        return await self.render(request, status=status, error=message, headers=headers)

    async def render(
        self,
        request: Request,
        *,
        status: int = 200,
        error: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        principal = get_principal(request)
        if principal is None:
            template, context = "login.html", self._login_context(request)
        else:
            template, context = "dashboard.html", await self._dashboard_context(request, principal)
        nonce = secrets.token_urlsafe(16)
        html = self._env.get_template(template).render(
            nonce=nonce, error=error, mode=self._auth.settings.mode, **context
        )
        return HTMLResponse(html, status, headers={**_page_headers(nonce), **(headers or {})})

    # -- logged out ------------------------------------------------------------------------
    def _login_context(self, request: Request) -> dict[str, Any]:
        auth = self._auth
        # In hybrid mode an expired access token leaves the refresh cookie (Path=/auth, not
        # sent here) and the CSRF cookie behind: offer to resume with a refresh.
        resume_token = None
        if auth.settings.mode == "hybrid":
            try:
                resume_token = read_cookie(
                    request.headers.getlist("cookie"), auth.cookie_policy.csrf_cookie_name
                )
            except AuthenticationError:
                resume_token = None
        # After a refused login the form keeps the username typed (never the password).
        submitted = request.scope.get(SUBMITTED_KEY) or {}
        username = submitted.get("username", "") if request.url.path == "/auth/login" else ""
        return {
            "csrf_token": auth.csrf_token(""),
            "resume_token": resume_token,
            "username": username[:256],
            # A refused login keeps the choice made; unticked by nobody, it is ticked.
            "remember": submitted.get("remember", "1") != "0",
        }

    # -- logged in -------------------------------------------------------------------------
    async def _dashboard_context(self, request: Request, principal: Principal) -> dict[str, Any]:
        auth = self._auth
        now = auth.clock.now()
        username: str | None = None
        sessions: list[dict[str, Any]] | None = None
        session_data: dict[str, Any] | None = None
        sessions_error = None
        try:
            user = await auth.store.get_user(principal.user_id)
            username = user.username if user else None
            if auth.settings.mode != "stateless":
                sessions = await self._sessions(principal, now)
                session_data = await self._session_data(principal)
        except StoreUnavailable:
            sessions_error = _MESSAGES["store_unavailable"]
        value = request.scope.get(AUTH_VALUE_KEY)
        cookie_name = auth.cookie_policy.auth_cookie_name
        cost = None
        # Not while the store, which a session's first sight reads, has just failed this page.
        if isinstance(value, str) and sessions_error is None:
            cost = await self._cookie_cost(value)
        ring = auth.context.keys.ring
        claims = self._claims(value, now, ring) if principal.token is not None else None
        expires_at = principal.token.exp if principal.token else None
        if expires_at is None and principal.session is not None:
            expires_at = int(principal.session.expires_at)
        return {
            "csrf_token": auth.csrf_token(principal.binding),
            "user_id": principal.user_id,
            "username": username or principal.user_id,
            "roles": principal.roles,
            "expires_at": expires_at,
            "expires_in": relative_time(expires_at, now) if expires_at else "",
            "cookie_name": cookie_name,
            # The value alone, and the cookie as the Cookie header carries it (name=value).
            "value_bytes": len(value) if isinstance(value, str) else 0,
            "cookie_bytes": len(cookie_name) + 1 + len(value) if isinstance(value, str) else 0,
            "claims": claims,
            "cost": cost,
            "cost_repeat": REPEAT,
            "cost_measured": relative_time(cost.measured_at, now) if cost else "",
            "algorithm": claims[0].get("alg") if claims else None,
            # AUTHSTATE_TOKEN_FORMAT=jwe: the page shows what this node decrypted.
            "encrypted": claims is not None and claims[0].get("alg") == "dir",
            "refresh_cookie_name": auth.cookie_policy.refresh_cookie_name,
            "sessions": sessions,
            "sessions_error": sessions_error,
            "session_data": session_data,
            "auth_time_ago": (
                relative_time(principal.auth_time, now) if principal.auth_time is not None else ""
            ),
            "fresh_window": duration_text(auth.settings.fresh_window_seconds),
        }

    async def _cookie_cost(self, value: str) -> CookieCost | None:
        """This node's timings (measured once, with the first cookie shown), or None when they
        cannot be had now: the panel says "unavailable" and the rest of the page renders."""
        try:
            return await self._costs.for_cookie(value)
        except AuthStateError as exc:  # the store is down: a display nicety, not the page
            log.warning("cookie cost unavailable: %s %s", type(exc).__name__, exc.reason)
            return None

    @staticmethod
    def _claims(
        value: object, now: float, ring: KeyRing
    ) -> tuple[dict[str, str], list[ClaimRow]] | None:
        # The middleware verified this token a moment ago; here we only display it.
        if not isinstance(value, str):
            return None
        try:
            parsed = parse_compact(value)
            header, body = parsed.header, parsed.claims
        except InvalidToken:
            try:  # an encrypted token: only this node (its ring) can show what it holds
                header, body = read_encrypted_claims(value, ring, now=now)
            except InvalidToken:
                return None
        rows = []
        for name, claim in body.items():
            note = ""
            if name in _TIME_CLAIMS and isinstance(claim, int):
                note = f"{format_time(claim)}, {relative_time(claim, now)}"
            text = ", ".join(map(str, claim)) if isinstance(claim, list) else str(claim)
            rows.append(ClaimRow(name, text, note))
        return header, rows

    async def _session_data(self, principal: Principal) -> dict[str, Any] | None:
        """This session's server-side data as the page shows it: each key with its value as
        JSON text, and the size against the cap (None if the session ended meanwhile)."""
        try:
            data = await self._auth.session_data(principal)
        except AuthenticationError:
            return None
        return {
            "entries": [
                (key, json.dumps(value, ensure_ascii=False)) for key, value in sorted(data.items())
            ],
            "bytes": data_size(data),
            "max_bytes": self._auth.settings.session_data_max_bytes,
        }

    async def _sessions(self, principal: Principal, now: float) -> list[dict[str, Any]]:
        current = principal.session.id if principal.session else None
        records = await self._auth.list_sessions(principal)
        # The current session first, then the most recently active.
        records.sort(key=lambda r: (r.handle != current, -r.last_seen_at))
        return [
            {
                "id": record.handle,
                "device": describe(record.user_agent),
                "user_agent": record.user_agent,
                "ip": record.ip or "unknown",
                "created": format_time(record.created_at),
                "created_ago": relative_time(record.created_at, now),
                "last_seen": format_time(record.last_seen_at),
                "last_seen_ago": relative_time(record.last_seen_at, now),
                "current": record.handle == current,
            }
            for record in records
        ]
