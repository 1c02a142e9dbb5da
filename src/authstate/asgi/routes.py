"""The ``/auth/*`` endpoints of DESIGN §3 as a Starlette router, plus JWKS and health routes."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route, Router

from authstate.asgi._body import is_form, read_fields, read_form_field
from authstate.asgi.client import client_info
from authstate.asgi.middleware import AUTH_VALUE_KEY, get_principal, own_origin
from authstate.asgi.responses import NO_STORE, clear_credentials, error_response, set_credentials
from authstate.cookies import read_cookie
from authstate.crypto.ids import check_secret_format, hash_secret
from authstate.errors import (
    AuthenticationError,
    AuthStateError,
    InvalidRefresh,
    NotFound,
    StoreUnavailable,
)
from authstate.modes.issued import IssuedCredentials
from authstate.principal import Principal

if TYPE_CHECKING:
    from authstate.auth import AuthState

audit = logging.getLogger("authstate.audit")

Endpoint = Callable[[Request], Awaitable[Response]]
# Renders a page for a failed form post: (request, status, error code, message) -> Response.
FormRenderer = Callable[[Request, int, str, str], Awaitable[Response]]


def _require(request: Request) -> Principal:
    principal = get_principal(request)
    if principal is None:
        raise AuthenticationError(reason="no valid auth cookie")
    return principal


def auth_router(auth: AuthState, *, form_renderer: FormRenderer | None = None) -> Router:
    """Routes to mount at ``/auth``. ``form_renderer`` renders failed HTML form posts."""
    policy = auth.cookie_policy
    trust_forwarded = auth.settings.trust_forwarded

    def endpoint(func: Endpoint) -> Endpoint:
        @functools.wraps(func)
        async def wrapper(request: Request) -> Response:
            try:
                return await func(request)
            except AuthStateError as exc:
                if form_renderer is not None and is_form(request):
                    return await form_renderer(request, exc.status_code, exc.code, exc.detail)
                return error_response(exc)

        return wrapper

    def success(request: Request, body: dict[str, object] | None, status: int = 200) -> Response:
        if is_form(request):
            return RedirectResponse("/", status_code=303, headers=NO_STORE)
        if body is None:
            return Response(status_code=status, headers=NO_STORE)
        return JSONResponse(body, status, headers=NO_STORE)

    def issued_response(
        request: Request, issued: IssuedCredentials, username: str | None
    ) -> Response:
        principal = issued.principal
        csrf_token = auth.csrf_token(principal.binding)
        response = success(
            request,
            {
                "user": {
                    "id": principal.user_id,
                    "username": username,
                    "roles": list(principal.roles),
                },
                "mode": auth.settings.mode,
                "csrf_token": csrf_token,
                "expires_at": int(issued.expires_at),
            },
        )
        set_credentials(response, issued, policy, csrf_token=csrf_token)
        return response

    async def username_of(user_id: str) -> str | None:
        try:
            return await auth.accounts.username_of(user_id)
        except StoreUnavailable:
            # A JWT keeps verifying while the store is down; only the display name is lost.
            return None

    @endpoint
    async def login(request: Request) -> Response:
        auth.csrf.check_login(
            origin=request.headers.get("origin"),
            sec_fetch_site=request.headers.get("sec-fetch-site"),
            own_origin=own_origin(request.scope, trust_forwarded=trust_forwarded),
        )
        fields = await read_fields(request, ("username", "password"))
        client = client_info(request, trust_forwarded=trust_forwarded)
        try:
            user = await auth.accounts.verify_login(
                fields["username"], fields["password"], ip=client.ip
            )
        except AuthStateError as exc:
            audit.info(
                "login failed", extra={"event": "login_failed", "error": exc.code, "ip": client.ip}
            )
            raise
        issued = await auth.login(
            user.id, user.roles, client=client, previous_auth=request.scope.get(AUTH_VALUE_KEY)
        )
        audit.info("login", extra={"event": "login", "user_id": user.id, "ip": client.ip})
        return issued_response(request, issued, user.username)

    @endpoint
    async def me(request: Request) -> Response:
        principal = _require(request)
        session = None
        if principal.session is not None:
            session = {"id": principal.session.id, "expires_at": int(principal.session.expires_at)}
        token = None
        if principal.token is not None:
            token = {"iat": principal.token.iat, "exp": principal.token.exp}
        body = {
            "user": {
                "id": principal.user_id,
                "username": await username_of(principal.user_id),
                "roles": list(principal.roles),
            },
            "mode": principal.mode,
            "session": session,
            "token": token,
        }
        return JSONResponse(body, headers=NO_STORE)

    @endpoint
    async def refresh(request: Request) -> Response:
        if auth.settings.mode != "hybrid":
            raise NotFound("no refresh in this mode")
        try:
            value = read_cookie(request.headers.getlist("cookie"), policy.refresh_cookie_name)
        except AuthenticationError as exc:
            raise InvalidRefresh(reason=exc.reason) from exc
        if value is None:
            raise InvalidRefresh(reason="no refresh cookie")

        csrf_token = request.headers.get("x-csrf-token")
        if csrf_token is None and is_form(request):
            csrf_token = await read_form_field(request, "csrf_token")

        def check_csrf(binding: str) -> None:
            auth.csrf.check_request(
                method=request.method,
                origin=request.headers.get("origin"),
                sec_fetch_site=request.headers.get("sec-fetch-site"),
                token=csrf_token,
                binding=binding,
                own_origin=own_origin(request.scope, trust_forwarded=trust_forwarded),
            )

        principal = get_principal(request)

        def check_family(handle: str) -> None:
            # An access cookie names its own family: rotate only that one, so a refresh
            # cookie planted beside it (a sibling host can set __Secure- cookies) is refused
            # instead of switching this browser into another account.
            if principal is not None and (
                principal.session is None or principal.session.id != handle
            ):
                raise InvalidRefresh(reason="refresh family is not the caller's")
            # Always bound to the family (with an access cookie the middleware checked the
            # same binding, its sid; without one, e.g. expired, this is the only check).
            check_csrf(handle)

        try:
            check_secret_format(value)
        except AuthenticationError as exc:
            raise InvalidRefresh(reason=exc.reason) from exc
        # Checked before anything changes, so a refused request rotates nothing.
        family = await auth.store.get_session(hash_secret(value))
        check_after: Callable[[str], None] | None = None
        if family is not None:
            check_family(family.handle)
        else:
            # Not the current token: only a grace-window answer (which changes nothing)
            # can follow, and it is checked against the family before it is issued.
            check_after = check_family
        issued = await auth.refresh(value, check_family=check_after)
        return issued_response(request, issued, await username_of(issued.principal.user_id))

    @endpoint
    async def logout(request: Request) -> Response:
        principal = _require(request)
        await auth.logout(principal)
        audit.info("logout", extra={"event": "logout", "user_id": principal.user_id})
        response = success(request, None, 204)
        clear_credentials(response, policy, refresh=auth.settings.mode == "hybrid")
        return response

    @endpoint
    async def logout_all(request: Request) -> Response:
        principal = _require(request)
        await auth.logout_everywhere(principal.user_id)
        audit.info("logout everywhere", extra={"event": "logout_all", "user_id": principal.user_id})
        response = success(request, None, 204)
        clear_credentials(response, policy, refresh=auth.settings.mode == "hybrid")
        return response

    @endpoint
    async def sessions(request: Request) -> Response:
        if auth.settings.mode == "stateless":
            raise NotFound("no sessions in stateless mode")
        principal = _require(request)
        current = principal.session.id if principal.session else None
        records = await auth.list_sessions(principal)
        body = {
            "sessions": [
                {
                    "id": r.handle,
                    "created_at": int(r.created_at),
                    "last_seen_at": int(r.last_seen_at),
                    "expires_at": int(min(r.expires_at, r.idle_expires_at())),
                    "user_agent": r.user_agent,
                    "ip": r.ip,
                    "current": r.handle == current,
                }
                for r in records
            ]
        }
        return JSONResponse(body, headers=NO_STORE)

    @endpoint
    async def delete_session(request: Request) -> Response:
        if auth.settings.mode == "stateless":
            raise NotFound("no sessions in stateless mode")
        principal = _require(request)
        handle = request.path_params["handle"]
        if not isinstance(handle, str) or len(handle) > 64:
            raise NotFound("no such session")
        await auth.revoke_session(principal, handle)
        audit.info(
            "session revoked", extra={"event": "session_revoked", "user_id": principal.user_id}
        )
        return success(request, None, 204)

    @endpoint
    async def password(request: Request) -> Response:
        principal = _require(request)
        fields = await read_fields(request, ("current_password", "new_password"))
        await auth.accounts.change_password(
            principal.user_id, fields["current_password"], fields["new_password"]
        )
        # Every other session and token dies; this browser gets fresh credentials.
        await auth.logout_everywhere(principal.user_id)
        issued = await auth.reissue(
            principal, client=client_info(request, trust_forwarded=trust_forwarded)
        )
        audit.info(
            "password changed", extra={"event": "password_changed", "user_id": principal.user_id}
        )
        response = success(request, None, 204)
        set_credentials(
            response, issued, policy, csrf_token=auth.csrf_token(issued.principal.binding)
        )
        return response

    @endpoint
    async def csrf(request: Request) -> Response:
        principal = get_principal(request)
        token = auth.csrf_token(principal.binding if principal else "")
        response = JSONResponse({"csrf_token": token}, headers=NO_STORE)
        response.headers.append(
            "set-cookie", policy.csrf_cookie(token, auth.settings.session_ttl_seconds)
        )
        return response

    return Router(
        routes=[
            Route("/login", login, methods=["POST"]),
            Route("/me", me, methods=["GET"]),
            Route("/refresh", refresh, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/logout-all", logout_all, methods=["POST"]),
            Route("/sessions", sessions, methods=["GET"]),
            Route("/sessions/{handle}", delete_session, methods=["DELETE", "POST"]),
            Route("/password", password, methods=["POST"]),
            Route("/csrf", csrf, methods=["GET"]),
        ],
        # A trailing-slash redirect takes its Location from the Host header (and would
        # send a credential POST elsewhere): /auth/me/ is an unknown path instead.
        redirect_slashes=False,
    )


def well_known_routes(auth: AuthState) -> list[Route]:
    """``GET /.well-known/jwks.json`` and ``GET /healthz``, for the application's root."""

    async def jwks(request: Request) -> Response:
        return JSONResponse(
            auth.jwks(),
            headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
        )

    async def healthz(request: Request) -> Response:
        try:
            await auth.health()
        except StoreUnavailable as exc:
            return error_response(exc)
        return JSONResponse({"status": "ok"}, headers=NO_STORE)

    return [
        Route("/.well-known/jwks.json", jwks, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
