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
(a JWT, or the session ID in session mode). The grants and the RFC's answers are
``authstate.token_grants`` (shared with the WSGI adapters); this module is Starlette's side.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from authstate.asgi._body import is_form, read_body
from authstate.asgi.client import client_info
from authstate.asgi.middleware import get_principal, own_origin
from authstate.asgi.responses import error_response
from authstate.errors import NotFound
from authstate.token_grants import (
    TOKEN_HEADERS,
    grant,
    not_a_form,
    parse_parameters,
    token_body,
    token_error,
)

if TYPE_CHECKING:
    from authstate.auth import AuthCore
    from authstate.modes.issued import IssuedCredentials

log = logging.getLogger("authstate.http")

__all__ = ["TOKEN_HEADERS", "TokenEndpoint", "token_response"]


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
        except Exception as exc:
            refusal = token_error(exc)
            if refusal is None:
                raise
            status, error, description, retry_after = refusal
            level = logging.WARNING if status >= 500 else logging.INFO
            log.log(level, "token request refused: %s: %s", error, exc)
            response = _error(status, error, description)
            if retry_after is not None:
                response.headers["Retry-After"] = str(retry_after)
            return response

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
        if not is_form(request):
            raise not_a_form()
        parameters = parse_parameters(await read_body(request))
        client = client_info(request, trust_forwarded=auth.settings.trust_forwarded)
        issued = await grant(auth, parameters, client=client, bound_to=get_principal(request))
        return token_response(issued, now=auth.clock.now())


def token_response(issued: IssuedCredentials, *, now: float) -> Response:
    """§5.1 with no cookie. Also the answer to a header client's password change
    (``POST /auth/password``)."""
    return JSONResponse(token_body(issued, now=now), headers=TOKEN_HEADERS)


def _error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description}, status, headers=TOKEN_HEADERS
    )
