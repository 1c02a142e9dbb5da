"""A framework-neutral request and answer, so the gate and the endpoints are written once
for Flask and Django. Headers come from the WSGI environ; each adapter supplies how the
body is read (its framework caches it, so the application can still read it after us)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from authstate.cookies import CookiePolicy
from authstate.errors import AuthStateError, TooManyAttempts
from authstate.modes.issued import IssuedCredentials
from authstate.token_grants import TOKEN_HEADERS, token_body

# The same values as the ASGI layer's (docs/http.md): every answer that depends on the
# caller is never cached and varies by Cookie; nosniff because error bodies echo text.
NO_STORE: tuple[tuple[str, str], ...] = (
    ("Cache-Control", "no-store"),
    ("Vary", "Cookie"),
    ("X-Content-Type-Options", "nosniff"),
)
FORM_TYPE = "application/x-www-form-urlencoded"

# 401 details are fixed strings: the precise reason would tell an attacker which check failed.
_PUBLIC_401 = {
    "unauthenticated": "authentication required",
    "invalid_credentials": "invalid username or password",
    "invalid_refresh": "invalid refresh token",
    # As asgi.responses: the client refreshes (hybrid) or logs in again (stateless).
    "token_stale": "roles changed: refresh the access token",
    "reauth_required": "confirm your password to continue",
}


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One request as the gate and the endpoints see it.

    ``read_body(limit)`` returns the raw body, raising ``PayloadTooLarge`` beyond
    ``limit`` bytes; the adapter makes a second call cheap (the framework caches it)."""

    method: str
    path: str
    environ: Mapping[str, Any]
    read_body: Callable[[int], bytes]

    def header(self, name: str) -> str | None:
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        value = self.environ.get(key)
        return value if isinstance(value, str) else None

    @property
    def media_type(self) -> str:
        return (self.header("content-type") or "").split(";")[0].strip().lower()

    @property
    def is_form(self) -> bool:
        return self.media_type == FORM_TYPE

    def own_origin(self, *, trust_forwarded: bool) -> str | None:
        """This server's origin as the browser sees it (behind a trusted proxy: the
        X-Forwarded-* headers), as the ASGI middleware computes it."""
        scheme = str(self.environ.get("wsgi.url_scheme", "http"))
        host = self.header("host")
        if trust_forwarded:
            scheme = (self.header("x-forwarded-proto") or scheme).split(",")[0].strip()
            host = (self.header("x-forwarded-host") or host or "").split(",")[0].strip() or None
        if host is None:
            return None
        return f"{scheme}://{host}"


@dataclass(slots=True)
class Reply:
    """An answer: status, headers (``Set-Cookie`` may repeat) and a body."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    content_type: str | None = None

    @classmethod
    def json(cls, data: object, status: int = 200) -> Reply:
        # Byte for byte what Starlette's JSONResponse writes.
        body = json.dumps(
            data, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
        ).encode("utf-8")
        return cls(status, list(NO_STORE), body, "application/json")

    @classmethod
    def empty(cls, status: int = 204) -> Reply:
        return cls(status, list(NO_STORE))

    @classmethod
    def redirect(cls, location: str) -> Reply:
        return cls(303, [("Location", location), *NO_STORE])

    def set_header(self, name: str, value: str) -> None:
        lowered = name.lower()
        self.headers = [(k, v) for k, v in self.headers if k.lower() != lowered]
        self.headers.append((name, value))


def error_reply(exc: AuthStateError) -> Reply:
    """``{"error": code, "detail": text}`` with the contract status (docs/http.md)."""
    detail = exc.detail if exc.status_code != 401 else _PUBLIC_401.get(exc.code, exc.detail)
    reply = Reply.json({"error": exc.code, "detail": detail}, exc.status_code)
    if isinstance(exc, TooManyAttempts):
        reply.headers.append(("Retry-After", str(exc.retry_after)))
    return reply


def set_credentials(
    reply: Reply, issued: IssuedCredentials, policy: CookiePolicy, *, csrf_token: str
) -> None:
    """The cookies of a login or refresh (the one writer: ``cookies.py``). Without
    remember-me every cookie is a browser-session cookie (no ``Max-Age``), as over ASGI."""
    remember = issued.remember
    auth_max_age = issued.auth_max_age if remember else None
    reply.headers.append(("Set-Cookie", policy.auth_cookie(issued.auth_value, auth_max_age)))
    if issued.refresh_value is not None:
        refresh_max_age = issued.refresh_max_age if remember else None
        reply.headers.append(
            ("Set-Cookie", policy.refresh_cookie(issued.refresh_value, refresh_max_age))
        )
    max_age = max(issued.auth_max_age, issued.refresh_max_age) if remember else None
    reply.headers.append(("Set-Cookie", policy.csrf_cookie(csrf_token, max_age)))


def clear_credentials(reply: Reply, policy: CookiePolicy, *, refresh: bool) -> None:
    """Expire every auth cookie (``Max-Age=0``) and ask the browser to drop cookies."""
    reply.headers.append(("Set-Cookie", policy.clear_auth()))
    if refresh:
        reply.headers.append(("Set-Cookie", policy.clear_refresh()))
    reply.headers.append(("Set-Cookie", policy.clear_csrf()))
    reply.headers.append(("Clear-Site-Data", '"cookies"'))


def vary_with(existing: str | None, name: str) -> str:
    """``existing`` extended by ``name`` in a ``Vary`` value (no duplicate; ``*`` covers all)."""
    if not existing:
        return name
    present = {item.strip().lower() for item in existing.split(",")}
    if name.lower() in present or "*" in present:
        return existing
    return f"{existing}, {name}"


def token_reply(issued: IssuedCredentials, *, now: float) -> Reply:
    """RFC 6749 §5.1 (``token_grants.token_body``), no cookie: ``POST /auth/token``'s
    answer, and a header client's password change's."""
    reply = Reply.json(token_body(issued, now=now))
    reply.headers = list(TOKEN_HEADERS.items())
    return reply
