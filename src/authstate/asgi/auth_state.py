"""``AuthState``, the public facade: the HTTP-free core (``authstate.auth.AuthCore``) plus
the ways into an ASGI application.

    auth = AuthState(mode="hybrid")
    app = Starlette(routes=[Mount("/auth", auth.routes())], middleware=[auth.middleware()])

It lives in the ASGI layer so that the core never imports Starlette: this module imports
the middleware, the routes and the FastAPI dependency, and nothing below it imports this.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any

from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Router
from starlette.types import ASGIApp

from authstate.asgi import app_login
from authstate.asgi.app_login import SignedIn
from authstate.asgi.fastapi import require
from authstate.asgi.middleware import AuthMiddleware, get_principal
from authstate.asgi.routes import FormRenderer, auth_router
from authstate.auth import AuthCore
from authstate.errors import AuthenticationError
from authstate.principal import Principal
from authstate.session_data import SessionData


class AuthState(AuthCore):
    """One node's authentication state. Create it once per process; the middleware starts
    it with the application's lifespan (``start()`` by hand otherwise)."""

    def middleware(self) -> Middleware:
        """A Starlette ``Middleware`` entry for ``Starlette(middleware=[...])``."""
        return Middleware(AuthMiddleware, auth=self)

    def wrap(self, app: ASGIApp) -> AuthMiddleware:
        """Wrap any ASGI app in the auth middleware."""
        return AuthMiddleware(app, auth=self)

    def routes(self, *, form_renderer: FormRenderer | None = None) -> Router:
        """The ``/auth/*`` endpoints as a Starlette router, to mount at ``/auth``.

        ``form_renderer`` renders a page for a failed HTML form post (else JSON errors)."""
        return auth_router(self, form_renderer=form_renderer)

    def require(
        self, role: str | None = None, *, fresh: float | None = None
    ) -> Callable[[HTTPConnection], Awaitable[Principal]]:
        """A FastAPI dependency returning the ``Principal`` (401 if none, 403 without
        ``role``, 401 ``reauth_required`` when ``fresh`` seconds have passed since the last
        password check: step-up, docs/concepts.md)."""
        # Read the node's clock at request time (a test may set auth.clock before start).
        return require(role, fresh=fresh, now=lambda: self.clock.now())

    async def session_data(self, request: HTTPConnection | Principal) -> SessionData:
        """The server-side data of the request's session (or of a ``Principal``'s), read from
        the store now: see ``authstate.session_data``. 401 without a principal, 404 in
        stateless mode."""
        return await super().session_data(_principal_of(request))

    async def update_session_data(
        self,
        request: HTTPConnection | Principal,
        changes: Mapping[str, Any],
        *,
        remove: Collection[str] = (),
    ) -> SessionData:
        """Set ``changes`` and delete ``remove`` in the request's session data, atomically."""
        return await super().update_session_data(_principal_of(request), changes, remove=remove)

    # -- an application's own login and logout routes -------------------------------------
    async def sign_in(
        self,
        request: Request,
        response: Response,
        user_id: str,
        roles: Sequence[str] = (),
        *,
        data: Mapping[str, Any] | None = None,
    ) -> SignedIn:
        """For an application's own login route, after it checked who the user is: refuse
        a cross-site login (``CSRFError``), issue credentials and set every cookie (auth,
        refresh, CSRF) on ``response``. Emits ``LoginSucceeded``."""
        return await app_login.sign_in(self, request, response, user_id, roles, data=data)

    async def login_response(
        self,
        request: Request,
        user_id: str,
        roles: Sequence[str] = (),
        *,
        username: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> JSONResponse:
        """``sign_in`` answered as ``POST /auth/login`` answers: 200, its JSON body
        (``user``, ``mode``, ``csrf_token``, ``expires_at``) and the cookies."""
        return await app_login.login_response(
            self, request, user_id, roles, username=username, data=data
        )

    async def sign_out(self, request: Request, response: Response) -> None:
        """For an application's own logout route: revoke the request's credentials and
        clear every auth cookie on ``response``. ``AuthenticationError`` (401) when not
        signed in. Emits ``LoggedOut``."""
        await app_login.sign_out(self, request, response)

    async def logout_response(self, request: Request) -> Response:
        """``sign_out`` answered as ``POST /auth/logout`` answers: 204 and cleared cookies."""
        return await app_login.logout_response(self, request)


def _principal_of(source: HTTPConnection | Principal) -> Principal:
    if isinstance(source, Principal):
        return source
    principal = get_principal(source)
    if principal is None:
        raise AuthenticationError(reason="session data asked for without a principal")
    return principal
