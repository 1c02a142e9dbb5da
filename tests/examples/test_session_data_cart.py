"""examples/session_data_cart.py: a cart in the session's server-side data."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from types import ModuleType

import httpx
import pytest

from tests.examples.conftest import BASE, PASSWORD

pytestmark = pytest.mark.anyio


@pytest.fixture
async def cart_app(example: Callable[[str], ModuleType]) -> AsyncIterator[ModuleType]:
    module = example("session_data_cart")
    async with module.auth:
        await module.auth.accounts.add_user("alice", PASSWORD)
        yield module


def client(module: ModuleType) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=module.app), base_url=BASE)


async def test_the_cart_lives_in_the_session_and_ends_with_it(cart_app: ModuleType) -> None:
    async with client(cart_app) as http, client(cart_app) as phone:
        assert (await http.get("/cart")).status_code == 401
        login = await http.post("/auth/login", json={"username": "alice", "password": PASSWORD})
        csrf = {"X-CSRF-Token": login.json()["csrf_token"]}
        assert (await http.get("/cart")).json() == {}
        refused = await http.post("/cart/items", json={"sku": "tea"})
        assert (refused.status_code, refused.json()["error"]) == (403, "csrf_failed")
        await http.post("/cart/items", json={"sku": "tea", "quantity": 2}, headers=csrf)
        added = await http.post("/cart/items", json={"sku": "tea"}, headers=csrf)
        assert added.json() == {"tea": 3}
        assert (await http.get("/auth/session/data")).json() == {"data": {"cart": {"tea": 3}}}
        assert "tea" not in str(http.cookies)  # on the server, not in the cookie

        # Another device of the same user has its own session, so its own (empty) cart.
        await phone.post("/auth/login", json={"username": "alice", "password": PASSWORD})
        assert (await phone.get("/cart")).json() == {}

        full = [f"item-{i:04d}-" + "x" * 22 for i in range(600)]  # 36 bytes each in JSON
        statuses = {
            (await http.post("/cart/items", json={"sku": sku}, headers=csrf)).status_code
            for sku in full
        }
        assert statuses == {200, 413}  # the cap (16 KiB) stops it; the cart keeps what fit
        assert 400 < len((await http.get("/cart")).json()) < 600

        assert (await http.delete("/cart", headers=csrf)).status_code == 204
        assert (await http.get("/cart")).json() == {}
        await http.post("/cart/items", json={"sku": "jam"}, headers=csrf)
        assert (await http.post("/auth/logout", headers=csrf)).status_code == 204
        assert (await http.get("/cart")).status_code == 401
