"""Login and logout for an application's own routes, in one call each: credentials issued
(or revoked) through ``AuthCore`` (so the lifecycle events fire) and every cookie written
(or cleared) by the one cookie writer.

``AuthState.sign_in``/``login_response`` and ``sign_out``/``logout_response`` call these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from authstate.asgi.client import client_info
from authstate.asgi.middleware import get_auth_value, get_principal, own_origin
from authstate.asgi.responses import NO_STORE, clear_credentials, set_credentials
from authstate.errors import AuthenticationError
from authstate.principal import Principal

if TYPE_CHECKING:
    from authstate.auth import AuthCore


@dataclass(frozen=True, slots=True)
class SignedIn:
    """What ``auth.sign_in`` issued: who, the CSRF token for page scripts (also in its
    cookie) and when the auth credential expires (Unix seconds)."""

    principal: Principal
    csrf_token: str
    expires_at: float


async def sign_in(
    auth: AuthCore,
    request: Request,
    response: Response,
    user_id: str,
    roles: Sequence[str] = (),
    *,
    data: Mapping[str, Any] | None = None,
) -> SignedIn:
    """Check the request is not a cross-site login (``CSRFError``), issue credentials for
    ``user_id`` (retiring the ones the browser held: fixation defence) and set the auth,
    refresh and CSRF cookies on ``response``."""
    trust_forwarded = auth.settings.trust_forwarded
    auth.csrf.check_login(
        origin=request.headers.get("origin"),
        sec_fetch_site=request.headers.get("sec-fetch-site"),
        own_origin=own_origin(request.scope, trust_forwarded=trust_forwarded),
    )
    issued = await auth.login(
        user_id,
        tuple(roles),
        client=client_info(request, trust_forwarded=trust_forwarded),
        previous_auth=get_auth_value(request),
        data=data,
    )
    csrf_token = auth.csrf_token(issued.principal.binding)
    set_credentials(response, issued, auth.cookie_policy, csrf_token=csrf_token)
    return SignedIn(issued.principal, csrf_token, issued.expires_at)


def login_body(auth: AuthCore, signed_in: SignedIn, username: str | None) -> dict[str, object]:
    """The body ``POST /auth/login`` answers (docs/http.md)."""
    principal = signed_in.principal
    return {
        "user": {"id": principal.user_id, "username": username, "roles": list(principal.roles)},
        "mode": auth.settings.mode,
        "csrf_token": signed_in.csrf_token,
        "expires_at": int(signed_in.expires_at),
    }


async def login_response(
    auth: AuthCore,
    request: Request,
    user_id: str,
    roles: Sequence[str] = (),
    *,
    username: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> JSONResponse:
    """``sign_in`` on a new 200 JSON response with the body of ``POST /auth/login``."""
    carrier = Response()
    signed_in = await sign_in(auth, request, carrier, user_id, roles, data=data)
    response = JSONResponse(login_body(auth, signed_in, username), headers=NO_STORE)
    response.raw_headers.extend(
        (name, value) for name, value in carrier.raw_headers if name == b"set-cookie"
    )
    return response


async def sign_out(auth: AuthCore, request: Request, response: Response) -> None:
    """Revoke the request's session, refresh family or token and clear every auth cookie
    on ``response``. ``AuthenticationError`` (401) when the request is not signed in."""
    principal = get_principal(request)
    if principal is None:
        raise AuthenticationError(reason="no valid auth cookie")
    await auth.logout(principal)
    clear_credentials(response, auth.cookie_policy, refresh=auth.settings.mode == "hybrid")


async def logout_response(auth: AuthCore, request: Request) -> Response:
    """``sign_out`` on a new ``204 No Content`` response."""
    response = Response(status_code=204)
    await sign_out(auth, request, response)
    return response
