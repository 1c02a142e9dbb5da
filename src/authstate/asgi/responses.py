"""Error bodies, auth-response headers and the translation of issued credentials to cookies."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from starlette.responses import JSONResponse, Response

from authstate.cookies import CookiePolicy
from authstate.errors import AuthStateError, TooManyAttempts
from authstate.modes.issued import IssuedCredentials

log = logging.getLogger("authstate.http")

# Headers of every response that depends on the caller. nosniff: error bodies echo request
# text (a path), which must never be sniffed into HTML.
NO_STORE = {"Cache-Control": "no-store", "Vary": "Cookie", "X-Content-Type-Options": "nosniff"}


def error_response(exc: AuthStateError) -> JSONResponse:
    """``{"error": code, "detail": text}`` with the contract status; the reason goes to the log."""
    if exc.status_code >= 500:
        log.warning("%s: %s", exc.code, exc.reason)
    else:
        log.info("%s: %s", exc.code, exc.reason)
    headers = dict(NO_STORE)
    if isinstance(exc, TooManyAttempts):
        headers["Retry-After"] = str(exc.retry_after)
    detail = exc.detail if exc.status_code != 401 else _PUBLIC_401.get(exc.code, exc.detail)
    return JSONResponse({"error": exc.code, "detail": detail}, exc.status_code, headers=headers)


# 401 details are fixed strings: the precise reason would tell an attacker which check failed.
_PUBLIC_401 = {
    "unauthenticated": "authentication required",
    "invalid_credentials": "invalid username or password",
    "invalid_refresh": "invalid refresh token",
    # The client's answer is a refresh (hybrid) or a new login (stateless): docs/http.md.
    "token_stale": "roles changed: refresh the access token",
    "reauth_required": "confirm your password to continue",
}


def json_error(
    status: int, code: str, detail: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": code, "detail": detail}, status, headers={**NO_STORE, **(headers or {})}
    )


def set_credentials(
    response: Response, issued: IssuedCredentials, policy: CookiePolicy, *, csrf_token: str
) -> None:
    """Write the cookies of a login or refresh onto ``response`` (one writer: ``cookies.py``).
    Without remember-me every cookie is a browser-session cookie (no ``Max-Age``)."""
    remember = issued.remember
    response.headers.append(
        "set-cookie",
        policy.auth_cookie(issued.auth_value, issued.auth_max_age if remember else None),
    )
    if issued.refresh_value is not None:
        refresh_max_age = issued.refresh_max_age if remember else None
        response.headers.append(
            "set-cookie", policy.refresh_cookie(issued.refresh_value, refresh_max_age)
        )
    max_age = max(issued.auth_max_age, issued.refresh_max_age) if remember else None
    response.headers.append("set-cookie", policy.csrf_cookie(csrf_token, max_age))
    _no_store(response)


def clear_credentials(response: Response, policy: CookiePolicy, *, refresh: bool) -> None:
    """Expire every auth cookie (``Max-Age=0``) and ask the browser to drop cookies."""
    response.headers.append("set-cookie", policy.clear_auth())
    if refresh:
        response.headers.append("set-cookie", policy.clear_refresh())
    response.headers.append("set-cookie", policy.clear_csrf())
    response.headers["Clear-Site-Data"] = '"cookies"'
    _no_store(response)


def _no_store(response: Response) -> None:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Vary"] = vary_with(response.headers.get("vary"), "Cookie")
    response.headers["X-Content-Type-Options"] = "nosniff"


def vary_with(existing: str | None, name: str) -> str:
    """The ``Vary`` value ``existing`` extended by ``name`` (no duplicate, whatever the case;
    ``*`` already covers every header)."""
    if not existing:
        return name
    present = {item.strip().lower() for item in existing.split(",")}
    if name.lower() in present or "*" in present:
        return existing
    return f"{existing}, {name}"
