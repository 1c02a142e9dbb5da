"""``auth.require()`` refuses with the body every ``/auth/*`` route answers with,
``{"error", "detail"}``, and the same status codes, in FastAPI and in Starlette: a client
parses one error shape whichever route refused it."""

# No "from __future__ import annotations": FastAPI reads the routes' annotations, which
# name a local (auth).

from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from authstate import AuthState, Principal
from authstate.cookies import AUTH_COOKIE

pytestmark = pytest.mark.anyio
BASE = "https://testserver"
UNAUTHENTICATED = {"error": "unauthenticated", "detail": "authentication required"}


def fastapi_app(auth: AuthState) -> FastAPI:
    app = FastAPI(middleware=[auth.middleware()])
    app.mount("/auth", auth.routes())

    @app.get("/me")
    async def me(user: Annotated[Principal, Depends(auth.require())]) -> dict[str, str]:
        return {"user_id": user.user_id}

    @app.get("/admin")
    async def admin(
        user: Annotated[Principal, Depends(auth.require(role="admin"))],
    ) -> dict[str, str]:
        return {"user_id": user.user_id}

    return app


def starlette_app(auth: AuthState) -> Starlette:
    async def me(request: Request) -> JSONResponse:
        user = await auth.require()(request)
        return JSONResponse({"user_id": user.user_id})

    async def admin(request: Request) -> JSONResponse:
        user = await auth.require(role="admin")(request)
        return JSONResponse({"user_id": user.user_id})

    return Starlette(
        routes=[Route("/me", me), Route("/admin", admin), Mount("/auth", auth.routes())],
        middleware=[auth.middleware()],
    )


@pytest.fixture(params=["fastapi", "starlette"])
async def app(request: pytest.FixtureRequest) -> AsyncIterator[tuple[AuthState, object]]:
    auth = AuthState(mode="session", store="memory://")
    build = fastapi_app if request.param == "fastapi" else starlette_app
    async with auth:
        yield auth, build(auth)


def client(app: object, cookie: str | None = None) -> httpx.AsyncClient:
    cookies = {AUTH_COOKIE: cookie} if cookie else None
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
        base_url=BASE,
        cookies=cookies,
    )


async def test_no_credentials_is_the_routes_401_body(app: tuple[AuthState, object]) -> None:
    _auth, asgi = app
    async with client(asgi) as http:
        own = await http.get("/me")
        routes = await http.get("/auth/me")
    assert (own.status_code, own.json()) == (401, UNAUTHENTICATED)
    assert (routes.status_code, routes.json()) == (401, UNAUTHENTICATED)
    assert own.headers["cache-control"] == "no-store"


async def test_a_missing_role_is_403_forbidden_in_the_same_shape(
    app: tuple[AuthState, object],
) -> None:
    auth, asgi = app
    issued = await auth.login("u1", ["staff"])
    async with client(asgi, issued.auth_value) as http:
        allowed = await http.get("/me")
        refused = await http.get("/admin")
    assert (allowed.status_code, allowed.json()) == (200, {"user_id": "u1"})
    assert refused.status_code == 403
    assert refused.json()["error"] == "forbidden"
    assert set(refused.json()) == {"error", "detail"}


async def test_a_revoked_cookie_is_the_same_401(app: tuple[AuthState, object]) -> None:
    auth, asgi = app
    issued = await auth.login("u1", ["admin"])
    await auth.logout(issued.principal)
    async with client(asgi, issued.auth_value) as http:
        response = await http.get("/admin")
    assert (response.status_code, response.json()) == (401, UNAUTHENTICATED)
