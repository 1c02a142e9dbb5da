"""The reference application: pages, ``/auth/*``, JWKS and health behind the auth middleware.

    app = create_app(Settings.from_env(mode="session", store="sqlite:///authstate.db"))

Unknown routes and wrong methods answer with the same JSON error body as the auth
routes (``{"error": "not_found", "detail": ...}``), never an HTML or plain-text page,
and never a redirect: ``/auth/me/`` is an unknown path (Starlette's trailing-slash
redirect builds its ``Location`` from the Host header). Requests for a host outside
``AUTHSTATE_ALLOWED_HOSTS`` get 400.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount

from authstate.asgi.auth_state import AuthState
from authstate.asgi.responses import json_error
from authstate.asgi.routes import auth_router, well_known_routes
from authstate.server.access_log import AccessLog
from authstate.server.form_errors import FormErrorPages
from authstate.server.hosts import AllowedHosts, allowed_hosts
from authstate.server.metrics_route import metrics_route
from authstate.server.pages import Pages
from authstate.settings import Settings


async def _not_found(request: Request, exc: Exception) -> Response:
    return json_error(404, "not_found", f"no route for {request.url.path[:100]}")


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    allow = exc.headers.get("Allow", "") if isinstance(exc, HTTPException) and exc.headers else ""
    headers = {"Allow": allow} if allow else None
    return json_error(
        405, "method_not_allowed", f"{request.method} is not allowed here", headers=headers
    )


async def _internal_error(request: Request, exc: Exception) -> Response:
    # A bug, not bad input: the traceback goes to the server log (Starlette re-raises).
    return json_error(500, "internal_error", "internal server error")


def create_app(settings: Settings | None = None, *, auth: AuthState | None = None) -> Starlette:
    """The reference server as a Starlette app.

    Pass ``settings`` (an ``AuthState`` is built from them) or a ready ``auth`` (tests use
    one with a fast password hasher), not both. The app's lifespan starts and stops
    ``auth``; ``app.state.auth`` is the ``AuthState``.
    """
    if auth is None:
        auth = AuthState(settings if settings is not None else Settings.from_env())
    elif settings is not None and settings is not auth.settings:
        raise ValueError("pass settings or auth, not both")
    pages = Pages(auth)
    app = Starlette(
        routes=[
            *pages.routes(),
            Mount("/auth", auth_router(auth, form_renderer=pages.render_form_error)),
            *well_known_routes(auth),
        ],
        middleware=[
            # Outermost first: the access log sees every answer, the error pages see the
            # auth middleware's refusals.
            Middleware(AccessLog),
            Middleware(
                AllowedHosts,
                hosts=allowed_hosts(auth.settings.allowed_hosts, auth.settings.host),
                trust_forwarded=auth.settings.trust_forwarded,
            ),
            Middleware(FormErrorPages, renderer=pages.render_form_error),
            auth.middleware(),
        ],
        exception_handlers={
            404: _not_found,
            405: _method_not_allowed,
            Exception: _internal_error,
        },
    )
    if auth.settings.metrics:  # opt-in: no /metrics (404) unless asked for
        app.router.routes.append(metrics_route(auth))
    app.router.redirect_slashes = False
    app.state.auth = auth
    return app


def app_from_env() -> Starlette:
    """The app from ``AUTHSTATE_*``: ``uvicorn --factory authstate.server.app:app_from_env``."""
    return create_app(Settings.from_env())
