"""``POST /auth/token``: credentials for clients without a cookie jar (mobile apps, CLIs,
services), as the token endpoint of RFC 6749.

    grant_type=password&username=alice&password=...        (§4.3, every mode)
    grant_type=refresh_token&refresh_token=...             (§6, hybrid mode)

The answer is the JSON of §5.1 (``access_token``, ``token_type: "Bearer"``,
``expires_in``, and ``refresh_token`` in hybrid mode) or an error of §5.2
(``{"error": "invalid_grant", "error_description": ...}``), never a cookie, always
``Cache-Control: no-store``. The endpoint exists only with the ``bearer`` transport
(``AUTHSTATE_TRANSPORTS=cookie,bearer``); otherwise it is a 404 like any unknown route.

It adds no rule of its own: the password grant is ``/auth/login``'s check (same
throttling per account and per IP, same answer for an unknown user and a wrong
password), the refresh grant is ``AuthCore.refresh`` (same rotation, grace window and
reuse detection as ``/auth/refresh``), and the access token is the auth cookie's value
(a JWT, or the session ID in session mode).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from authstate.asgi._body import is_form, read_body
from authstate.asgi.client import client_info
from authstate.asgi.middleware import get_principal, own_origin
from authstate.asgi.responses import error_response
from authstate.errors import (
    AuthenticationError,
    AuthStateError,
    BadRequest,
    NotFound,
    PayloadTooLarge,
    TooManyAttempts,
)

if TYPE_CHECKING:
    from authstate.auth import AuthCore
    from authstate.modes.issued import IssuedCredentials

log = logging.getLogger("authstate.http")

# RFC 6749 §5.1: "no-store" and, for HTTP/1.0 caches, "Pragma: no-cache".
TOKEN_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Content-Type-Options": "nosniff",
}
# The only parameters a token request may carry; §3.2 says none may be repeated.
_PARAMETERS = frozenset(
    {"grant_type", "username", "password", "refresh_token", "scope", "client_id"}
)


class _Refused(Exception):
    """A refusal in the words of RFC 6749 §5.2 (``error`` is one of its codes); never
    leaves this module: ``TokenEndpoint.token`` turns it into the answer."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


class TokenEndpoint:
    """``POST /auth/token`` of one ``AuthState`` (``routes.auth_router`` mounts it)."""

    def __init__(self, auth: AuthCore) -> None:
        self.auth = auth

    async def token(self, request: Request) -> Response:
        """``POST /auth/token``: credentials in the answer body, or an RFC 6749 error."""
        if not self.auth.settings.bearer_enabled:
            return error_response(NotFound("no route for /auth/token"))
        try:
            return await self._answer(request)
        except _Refused as exc:
            log.info("token request refused: %s: %s", exc.error, exc.description)
            return _error(exc.status, exc.error, exc.description)
        except TooManyAttempts as exc:
            log.info("token request throttled")
            response = _error(429, exc.code, exc.detail)
            response.headers["Retry-After"] = str(exc.retry_after)
            return response
        except AuthenticationError as exc:
            # Unknown user, wrong password, disabled account; unknown, expired, revoked or
            # reused refresh token: one answer (§5.2 invalid_grant), the reason to the log.
            log.info("token request refused: invalid_grant: %s", exc.reason)
            return _error(400, "invalid_grant", _GRANT_DETAIL)
        except PayloadTooLarge as exc:
            return _error(413, "invalid_request", exc.detail)
        except BadRequest as exc:
            return _error(400, "invalid_request", exc.detail)
        except AuthStateError as exc:
            # Cross-site (403 csrf_failed), store down (503): the codes of docs/http.md.
            level = logging.WARNING if exc.status_code >= 500 else logging.INFO
            log.log(level, "token request refused: %s: %s", exc.code, exc.reason)
            return _error(exc.status_code, exc.code, exc.detail)

    async def _answer(self, request: Request) -> Response:
        auth = self.auth
        # A browser page on another site must not drive password guesses from its
        # visitors' browsers: the Origin / Sec-Fetch-Site rules of login (non-browser
        # clients send neither header and pass).
        auth.csrf.check_login(
            origin=request.headers.get("origin"),
            sec_fetch_site=request.headers.get("sec-fetch-site"),
            own_origin=own_origin(request.scope, trust_forwarded=auth.settings.trust_forwarded),
        )
        parameters = await _read_parameters(request)
        grant = parameters.get("grant_type")
        if grant is None:
            raise _Refused("invalid_request", "grant_type is required")
        if "scope" in parameters:
            raise _Refused("invalid_scope", "authstate issues no scopes")
        if grant == "password":
            issued = await self._password_grant(request, parameters)
        elif grant == "refresh_token" and auth.settings.mode == "hybrid":
            refresh_token = _required(parameters, "refresh_token")
            # The refresh token comes in the body, not in an ambient cookie: nothing to
            # forge. A Bearer (or cookie) access token sent beside it binds the family.
            issued = await auth.refresh(refresh_token, bound_to=get_principal(request))
        else:
            raise _Refused(
                "unsupported_grant_type", f"grant_type {grant[:40]!r} is not offered here"
            )
        return token_response(issued, now=auth.clock.now())

    async def _password_grant(
        self, request: Request, parameters: dict[str, str]
    ) -> IssuedCredentials:
        auth = self.auth
        username = _required(parameters, "username")
        password = _required(parameters, "password")
        client = client_info(request, trust_forwarded=auth.settings.trust_forwarded)
        # The audit lines are the core's lifecycle events (login, login_failed, ...).
        user = await auth.verify_login(username, password, ip=client.ip)
        return await auth.login(user.id, user.roles, client=client)


_GRANT_DETAIL = "invalid username, password or refresh token"


async def _read_parameters(request: Request) -> dict[str, str]:
    """The form parameters of a token request (§3.2: urlencoded, none repeated, an
    empty value counts as absent, unknown ones ignored)."""
    if not is_form(request):
        raise _Refused("invalid_request", "send application/x-www-form-urlencoded (RFC 6749 §4.3)")
    body = await read_body(request)
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise _Refused("invalid_request", "the form is not UTF-8") from None
    parameters: dict[str, str] = {}
    for name, value in pairs:
        if name not in _PARAMETERS:
            continue
        if name in parameters:
            raise _Refused("invalid_request", f"{name} is repeated")
        parameters[name] = value
    return {name: value for name, value in parameters.items() if value}


def _required(parameters: dict[str, str], name: str) -> str:
    value = parameters.get(name)
    if value is None:
        raise _Refused("invalid_request", f"{name} is required")
    return value


def token_response(issued: IssuedCredentials, *, now: float) -> Response:
    """§5.1: the access token (a JWT, or the session ID in session mode), its lifetime in
    seconds and, in hybrid mode, the refresh token. No cookie. Also the answer to a
    header client's password change (``POST /auth/password``)."""
    body: dict[str, object] = {
        "access_token": issued.auth_value,
        "token_type": "Bearer",
        "expires_in": max(0, int(issued.expires_at - now)),
    }
    if issued.refresh_value is not None:
        body["refresh_token"] = issued.refresh_value
    return JSONResponse(body, headers=TOKEN_HEADERS)


def _error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description}, status, headers=TOKEN_HEADERS
    )
