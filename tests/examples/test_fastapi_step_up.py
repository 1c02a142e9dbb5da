"""examples/fastapi_step_up.py: a route behind ``auth.require(fresh=300)``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from types import ModuleType

import httpx
import pytest

from authstate import FrozenClock
from tests.examples.conftest import BASE, PASSWORD

pytestmark = pytest.mark.anyio


@pytest.fixture
async def step_up(example: Callable[[str], ModuleType]) -> AsyncIterator[ModuleType]:
    module = example("fastapi_step_up")
    module.auth.clock = FrozenClock()  # before start: the whole node runs on it
    async with module.auth:
        await module.auth.accounts.add_user("alice", PASSWORD, ("staff",))
        yield module


async def test_a_refund_needs_a_recent_password_check(step_up: ModuleType) -> None:
    """Right after login the refund works; five minutes later it is 401 reauth_required;
    after POST /auth/reauth it works again, and /orders shows the new check's time."""
    clock: FrozenClock = step_up.auth.clock
    transport = httpx.ASGITransport(app=step_up.app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        login = await http.post("/auth/login", json={"username": "alice", "password": PASSWORD})
        csrf = login.json()["csrf_token"]
        headers = {"X-CSRF-Token": csrf}
        assert (await http.post("/orders/1001/refund", headers=headers)).status_code == 200
        clock.advance(301)
        stale = await http.post("/orders/1001/refund", headers=headers)
        assert stale.status_code == 401 and stale.json()["error"] == "reauth_required"
        assert (await http.get("/orders")).status_code == 200  # a login is still a login
        reauth = await http.post("/auth/reauth", json={"password": PASSWORD}, headers=headers)
        assert reauth.status_code == 200
        headers = {"X-CSRF-Token": reauth.json()["csrf_token"]}
        refund = await http.post("/orders/1001/refund", headers=headers)
        assert refund.status_code == 200 and refund.json()["refunded"] == "1001"
        assert (await http.get("/orders")).json()["password_checked_at"] == int(clock.now())
