"""The ``/auth/*`` endpoints of docs/http.md as a Starlette router, plus JWKS and health routes.

The endpoints themselves are ``endpoints.AuthEndpoints``; how they answer a form post is
``forms``. This module only maps paths and methods to them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, Router, WebSocketRoute

from authstate.asgi.endpoints import AuthEndpoints
from authstate.asgi.forms import Endpoint, FormRenderer, answering_errors
from authstate.asgi.responses import NO_STORE, error_response
from authstate.asgi.session_data_endpoint import session_data_endpoint
from authstate.asgi.session_feed import SessionFeed
from authstate.asgi.token_endpoint import TokenEndpoint
from authstate.errors import StoreUnavailable

if TYPE_CHECKING:
    from authstate.auth import AuthCore

__all__ = ["FormRenderer", "auth_router", "well_known_routes"]


def auth_router(auth: AuthCore, *, form_renderer: FormRenderer | None = None) -> Router:
    """Routes to mount at ``/auth``. ``form_renderer`` renders failed HTML form posts."""
    endpoints = AuthEndpoints(auth)

    def route(path: str, endpoint: Endpoint, *methods: str) -> Route:
        return Route(path, answering_errors(endpoint, form_renderer), methods=list(methods))

    return Router(
        routes=[
            route("/login", endpoints.login, "POST"),
            route("/me", endpoints.me, "GET"),
            route("/refresh", endpoints.refresh, "POST"),
            route("/logout", endpoints.logout, "POST"),
            route("/logout-all", endpoints.logout_all, "POST"),
            route("/sessions", endpoints.sessions, "GET"),
            route("/sessions/revoke-others", endpoints.revoke_others, "POST"),
            route("/reauth", endpoints.reauth, "POST"),
            route("/sessions/{handle}", endpoints.delete_session, "DELETE", "POST"),
            route("/password", endpoints.password, "POST"),
            route("/csrf", endpoints.csrf, "GET"),
            route("/session/data", session_data_endpoint(auth), "GET", "PATCH"),
            # RFC 6749 errors of its own, never a form page: its clients are programs.
            Route("/token", TokenEndpoint(auth).token, methods=["POST"]),
            WebSocketRoute("/ws", SessionFeed(endpoints)),
        ],
        # A trailing-slash redirect takes its Location from the Host header (and would
        # send a credential POST elsewhere): /auth/me/ is an unknown path instead.
        redirect_slashes=False,
    )


def well_known_routes(auth: AuthCore) -> list[Route]:
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
