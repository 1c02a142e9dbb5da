"""What a warm ``GET /auth/me`` costs the store: nothing, in every mode (chaos report O1:
a store read per call for the display name cut hybrid throughput by ~65 % while
PostgreSQL was down)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from authstate import AuthState
from authstate.errors import StoreUnavailable
from authstate.server.app import create_app
from authstate.settings import Settings
from authstate.stores.memory import MemoryStore
from tests.server.conftest import BASE, MODES, PASSWORD, fast_hasher

pytestmark = pytest.mark.anyio


class CountingStore(MemoryStore):
    """A memory store that records every call of its public coroutine methods and can be
    made to fail them all (a store outage)."""

    calls: list[str]
    down: bool

    def __getattribute__(self, name: str) -> Any:
        attr = super().__getattribute__(name)
        if name.startswith("_") or not inspect.iscoroutinefunction(attr):
            return attr
        return self._counted(name, attr)

    def _counted(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            if self.down:
                raise StoreUnavailable(reason="test outage")
            return await method(*args, **kwargs)

        return counted


@pytest.mark.parametrize("mode", MODES)
async def test_a_warm_me_makes_no_store_call_and_survives_an_outage(mode: str) -> None:
    """After one ``/auth/me``, a hundred more make zero store calls, and while the store is
    down ``/auth/me`` still names the user."""
    store = CountingStore()
    store.calls, store.down = [], False
    settings = Settings.from_env({}, mode=mode, store="memory://", allowed_hosts="testserver")
    auth = AuthState(settings, store=store, password_hasher=fast_hasher())
    async with auth:
        await auth.accounts.add_user("alice", PASSWORD)
        transport = httpx.ASGITransport(app=create_app(auth=auth))
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            login = await client.post(
                "/auth/login", json={"username": "alice", "password": PASSWORD}
            )
            assert login.status_code == 200
            assert (await client.get("/auth/me")).status_code == 200
            store.calls.clear()
            for _ in range(100):
                response = await client.get("/auth/me")
                assert response.json()["user"]["username"] == "alice"
            assert store.calls == []
            if mode != "session":  # a session cookie is a store record: the outage is a 503
                store.down = True
                response = await client.get("/auth/me")
                store.down = False
                assert response.json()["user"]["username"] == "alice"
