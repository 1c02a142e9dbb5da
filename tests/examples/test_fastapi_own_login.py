"""examples/fastapi_own_login.py: the application's own login route issues authstate cookies."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from types import ModuleType

import httpx
import pytest

from tests.examples.conftest import BASE

pytestmark = pytest.mark.anyio
CAROL = {"username": "carol", "password": "carol's long password"}


@pytest.fixture
async def app_module(example: Callable[[str], ModuleType]) -> AsyncIterator[ModuleType]:
    module = example("fastapi_own_login")
    async with module.auth:
        yield module


def client(module: ModuleType) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=module.app), base_url=BASE)


async def test_own_login_sets_the_cookies_authstate_reads(app_module: ModuleType) -> None:
    """After POST /login, auth.require recognises carol and her staff role."""
    async with client(app_module) as http:
        response = await http.post("/login", json=CAROL)
        assert response.status_code == 200
        assert {"__Host-authstate", "__Secure-authstate-refresh", "__Host-authstate-csrf"} <= set(
            http.cookies.keys()
        )
        orders = await http.get("/orders")
    assert (orders.status_code, orders.json()["user_id"]) == (200, "u-carol")


async def test_wrong_password_is_401(app_module: ModuleType) -> None:
    """The application's own check refuses; no cookie is set."""
    async with client(app_module) as http:
        response = await http.post("/login", json={**CAROL, "password": "guess"})
    assert response.status_code == 401
    assert "set-cookie" not in response.headers


async def test_a_cross_site_login_is_refused_with_authstates_error_body(
    app_module: ModuleType,
) -> None:
    """Login CSRF: a post from another site gets 403 csrf_failed, before the password check."""
    async with client(app_module) as http:
        response = await http.post(
            "/login",
            json=CAROL,
            headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        )
    assert (response.status_code, response.json()["error"]) == (403, "csrf_failed")


async def test_refresh_and_logout_come_from_the_mounted_routes(app_module: ModuleType) -> None:
    """Hybrid: /auth/refresh rotates what /login issued; /auth/logout ends it."""
    async with client(app_module) as http:
        csrf = (await http.post("/login", json=CAROL)).json()["csrf_token"]
        refreshed = await http.post("/auth/refresh", headers={"X-CSRF-Token": csrf})
        assert refreshed.status_code == 200, refreshed.text
        csrf = refreshed.json()["csrf_token"]
        assert (await http.get("/orders")).status_code == 200
        assert (await http.post("/auth/logout", headers={"X-CSRF-Token": csrf})).status_code == 204
        assert (await http.get("/orders")).status_code == 401


async def test_the_one_call_login_answers_like_auth_login(app_module: ModuleType) -> None:
    """login_response: the body of POST /auth/login, no-store, and the CSRF token in the
    body is the one in the cookie."""
    async with client(app_module) as http:
        response = await http.post("/login", json=CAROL)
        body = response.json()
        assert body["user"] == {"id": "u-carol", "username": "carol", "roles": ["staff"]}
        assert body["mode"] == "hybrid" and body["expires_at"] > 0
        assert body["csrf_token"] == http.cookies.get("__Host-authstate-csrf")
    assert response.headers["cache-control"] == "no-store"


async def test_the_wrong_password_answers_authstates_error_shape(app_module: ModuleType) -> None:
    async with client(app_module) as http:
        response = await http.post("/login", json={**CAROL, "password": "guess"})
    assert response.json() == {
        "error": "invalid_credentials",
        "detail": "invalid username or password",
    }


async def test_the_one_call_logout_revokes_and_clears_the_cookies(app_module: ModuleType) -> None:
    async with client(app_module) as http:
        csrf = (await http.post("/login", json=CAROL)).json()["csrf_token"]
        auth_cookie = http.cookies.get("__Host-authstate")
        response = await http.post("/logout", headers={"X-CSRF-Token": csrf})
        assert response.status_code == 204
        cleared = [h for h in response.headers.get_list("set-cookie") if "Max-Age=0" in h]
        assert len(cleared) == 3  # auth, refresh, CSRF
        assert (await http.get("/orders")).status_code == 401
        # The old cookie, replayed, is revoked server-side, not merely forgotten.
        http.cookies.clear()
        replay = await http.get("/orders", headers={"Cookie": f"__Host-authstate={auth_cookie}"})
    assert replay.status_code == 401
    assert replay.json()["error"] == "unauthenticated"


async def test_the_apps_subscriber_hears_its_own_routes_logins(app_module: ModuleType) -> None:
    """Events fire for logins made through the application's own route."""
    assert app_module.LAST_LOGIN == {}
    async with client(app_module) as http:
        await http.post("/login", json=CAROL)
    assert set(app_module.LAST_LOGIN) == {"u-carol"}
