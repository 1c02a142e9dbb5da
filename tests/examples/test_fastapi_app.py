"""examples/fastapi_app.py, the quickstart app: staff only on /orders, CSRF on unsafe requests."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from types import ModuleType

import httpx
import pytest

from tests.examples.conftest import BASE, PASSWORD

pytestmark = pytest.mark.anyio


@pytest.fixture
async def quickstart(example: Callable[[str], ModuleType]) -> AsyncIterator[ModuleType]:
    module = example("fastapi_app")
    async with module.auth:
        await module.auth.accounts.add_user("alice", PASSWORD, ("staff",))
        await module.auth.accounts.add_user("bob", PASSWORD)
        yield module


def client(module: ModuleType) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=module.app), base_url=BASE)


async def login(http: httpx.AsyncClient, name: str) -> str:
    response = await http.post("/auth/login", json={"username": name, "password": PASSWORD})
    assert response.status_code == 200, response.text
    token: str = response.json()["csrf_token"]
    return token


async def test_staff_sees_their_orders(quickstart: ModuleType) -> None:
    """alice (role staff) signs in through /auth/login and gets /orders."""
    async with client(quickstart) as http:
        await login(http, "alice")
        response = await http.get("/orders")
    assert response.status_code == 200
    assert response.json()["orders"] == ["#1001", "#1002"]


async def test_anonymous_is_401_and_a_user_without_the_role_is_403(quickstart: ModuleType) -> None:
    """No cookie: 401; bob has no staff role: 403."""
    async with client(quickstart) as http:
        assert (await http.get("/orders")).status_code == 401
        await login(http, "bob")
        assert (await http.get("/orders")).status_code == 403


async def test_logout_needs_the_csrf_header_and_then_ends_access(quickstart: ModuleType) -> None:
    """A POST without X-CSRF-Token is refused; with it, logout works and /orders is 401."""
    async with client(quickstart) as http:
        csrf = await login(http, "alice")
        refused = await http.post("/auth/logout")
        assert (refused.status_code, refused.json()["error"]) == (403, "csrf_failed")
        assert (await http.post("/auth/logout", headers={"X-CSRF-Token": csrf})).status_code == 204
        assert (await http.get("/orders")).status_code == 401


def test_the_library_does_not_import_fastapi() -> None:
    """FastAPI is an example dependency: importing all of authstate leaves it unimported."""
    code = (
        "import sys, authstate, authstate.asgi.middleware, authstate.asgi.routes, "
        "authstate.asgi.fastapi, authstate.server.app, authstate.cli\n"
        "assert 'fastapi' not in sys.modules, 'authstate imported fastapi'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
