"""examples/fastapi_roles.py: an admin demotes a signed-in admin, who loses the role at once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from types import ModuleType

import httpx
import pytest

from tests.examples.conftest import BASE, PASSWORD

pytestmark = pytest.mark.anyio


@pytest.fixture
async def roles_app(example: Callable[[str], ModuleType]) -> AsyncIterator[ModuleType]:
    module = example("fastapi_roles")
    async with module.auth:
        await module.auth.accounts.add_user("alice", PASSWORD, ("admin",))
        await module.auth.accounts.add_user("bob", PASSWORD, ("admin",))
        yield module


def client(module: ModuleType) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=module.app), base_url=BASE)


async def login(http: httpx.AsyncClient, name: str) -> str:
    response = await http.post("/auth/login", json={"username": name, "password": PASSWORD})
    assert response.status_code == 200, response.text
    token: str = response.json()["csrf_token"]
    return token


async def test_a_demoted_admin_is_stale_then_forbidden_after_refreshing(
    roles_app: ModuleType,
) -> None:
    """bob, signed in as admin, is demoted by alice: his next request is 401 token_stale,
    the refresh gives him a token with role viewer, and the admin route is then 403."""
    async with client(roles_app) as alice, client(roles_app) as bob:
        alice_csrf = await login(alice, "alice")
        bob_csrf = await login(bob, "bob")
        assert (await bob.get("/admin/report")).status_code == 200

        demoted = await alice.put(
            "/admin/users/bob/roles",
            json={"roles": ["viewer"]},
            headers={"x-csrf-token": alice_csrf},
        )
        assert demoted.status_code == 200, demoted.text
        assert demoted.json() == {"username": "bob", "roles": ["viewer"]}

        stale = await bob.get("/admin/report")
        assert (stale.status_code, stale.json()["error"]) == (401, "token_stale")
        refreshed = await bob.post("/auth/refresh", headers={"x-csrf-token": bob_csrf})
        assert refreshed.status_code == 200, refreshed.text
        assert refreshed.json()["user"]["roles"] == ["viewer"]
        assert (await bob.get("/admin/report")).status_code == 403
        assert (await bob.get("/auth/me")).json()["user"]["roles"] == ["viewer"]
        assert (await alice.get("/admin/report")).status_code == 200


async def test_bad_requests_change_nothing(roles_app: ModuleType) -> None:
    """An unknown user is 404, a malformed role 400, a missing CSRF header 403; bob keeps admin."""
    async with client(roles_app) as alice:
        csrf = await login(alice, "alice")
        headers = {"x-csrf-token": csrf}
        unknown = await alice.put("/admin/users/nobody/roles", json={"roles": []}, headers=headers)
        assert unknown.status_code == 404
        bad = await alice.put("/admin/users/bob/roles", json={"roles": ["a b"]}, headers=headers)
        assert bad.status_code == 400
        no_csrf = await alice.put("/admin/users/bob/roles", json={"roles": []})
        assert no_csrf.status_code == 403
    bob = await roles_app.auth.accounts.get_by_name("bob")
    assert bob.roles == ("admin",)
