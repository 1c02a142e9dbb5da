"""``auth.sign_in`` / ``auth.sign_out`` in an application's own routes: one call sets (or
clears) every cookie, the login-CSRF check comes with it, and refusals have the routes'
error body. FastAPI's injected ``Response`` carries the cookies."""

# No "from __future__ import annotations": FastAPI reads the routes' annotations, which
# name a local (auth).
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from authstate import AuthState
from authstate.cookies import AUTH_COOKIE, CSRF_COOKIE
from authstate.events import LoggedOut, LoginSucceeded

pytestmark = pytest.mark.anyio
BASE = "https://testserver"


@pytest.fixture(params=["stateless", "session", "hybrid"])
async def app(request: pytest.FixtureRequest) -> AsyncIterator[tuple[AuthState, FastAPI]]:
    auth = AuthState(mode=request.param, store="memory://")
    app = FastAPI(middleware=[auth.middleware()])
    app.mount("/auth", auth.routes())

    @app.post("/signin")
    async def signin(request: Request, response: Response) -> dict[str, str]:
        signed_in = await auth.sign_in(request, response, "u1", ["staff"])
        return {"csrf": signed_in.csrf_token, "user": signed_in.principal.user_id}

    @app.post("/signout", status_code=204)
    async def signout(request: Request, response: Response) -> None:
        await auth.sign_out(request, response)

    async with auth:
        yield auth, app


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)


async def test_sign_in_sets_every_cookie_on_fastapis_response(
    app: tuple[AuthState, FastAPI],
) -> None:
    auth, asgi = app
    heard: list[object] = []
    auth.subscribe(heard.append, LoginSucceeded, LoggedOut)
    async with client(asgi) as http:
        body = (await http.post("/signin")).json()
        assert body["user"] == "u1" and body["csrf"] == http.cookies.get(CSRF_COOKIE)
        assert http.cookies.get(AUTH_COOKIE)
        me = await http.get("/auth/me")
        assert me.status_code == 200 and me.json()["user"]["id"] == "u1"
        out = await http.post("/signout", headers={"X-CSRF-Token": body["csrf"]})
        assert out.status_code == 204
        assert (await http.get("/auth/me")).status_code == 401
    assert [type(e) for e in heard] == [LoginSucceeded, LoggedOut]


async def test_a_cross_site_sign_in_is_refused_before_anything_is_issued(
    app: tuple[AuthState, FastAPI],
) -> None:
    auth, asgi = app
    heard: list[object] = []
    auth.subscribe(heard.append)
    async with client(asgi) as http:
        response = await http.post(
            "/signin",
            headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        )
    assert response.status_code == 403
    assert response.json()["error"] == "csrf_failed"
    assert "set-cookie" not in response.headers
    assert heard == []


async def test_sign_out_without_a_session_is_the_routes_401(
    app: tuple[AuthState, FastAPI],
) -> None:
    _auth, asgi = app
    async with client(asgi) as http:
        response = await http.post("/signout")
    assert response.status_code == 401
    assert response.json() == {"error": "unauthenticated", "detail": "authentication required"}
