"""Live roles and claims (``set_roles``/``set_claims``) on two nodes sharing a real store,
in every mode: what each node answers for credentials issued before the change."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from authstate import AuthState, BadRequest, StaleToken
from authstate.errors import AuthenticationError, InvalidRefresh
from authstate.principal import Principal
from authstate.settings import Settings
from tests.multinode.conftest import (  # noqa: F401 - fixtures the stores come from
    postgres_schema_url,
    redis_prefixed_url,
)

pytestmark = pytest.mark.anyio

SECRET = "live-roles-test-secret-" + "x" * 24
# How long the bus may take here (SQLite polls every 0.2 s); the assertions wait for the
# change, never for a time.
BOUND = 10.0


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    """A store URL two nodes can share (PostgreSQL and Redis: a schema or prefix of its own)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/shared.db"
    fixture = "postgres_schema_url" if request.param == "postgres" else "redis_prefixed_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
async def two_nodes(
    store_url: str, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[AuthState, AuthState]]:
    mode = request.param
    nodes = [
        AuthState(Settings.from_env({}, mode=mode, store=store_url, secret=SECRET))
        for _ in range(2)
    ]
    for node in nodes:
        await node.start()
    try:
        yield nodes[0], nodes[1]
    finally:
        for node in nodes:
            await node.stop()


def modes(*names: str) -> Any:
    return pytest.mark.parametrize("two_nodes", names, indirect=True)


async def until(check: Callable[[], Any]) -> None:
    """Await ``check()`` until it returns without raising (an AssertionError or an
    authentication error); the last failure is raised after ``BOUND`` seconds."""
    deadline = time.monotonic() + BOUND
    while True:
        try:
            result = check()
            if asyncio.iscoroutine(result):
                await result
            return
        except (AssertionError, AuthenticationError, pytest.fail.Exception):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def roles_on(node: AuthState, auth_value: str) -> tuple[str, ...]:
    principal: Principal = await node.authenticate(auth_value)
    return principal.roles


@modes("session")
async def test_session_roles_change_in_place_on_every_node(
    two_nodes: tuple[AuthState, AuthState],
) -> None:
    """The same session ID shows the new roles and claims on both nodes, the node that had
    it cached included: nobody logs in again."""
    a, b = two_nodes
    issued = await a.login("alice", roles=("admin",))
    assert await roles_on(a, issued.auth_value) == ("admin",)
    assert await roles_on(b, issued.auth_value) == ("admin",)  # cached on b now
    await a.set_roles("alice", ["viewer"])
    await a.set_claims("alice", {"org": "acme"})

    async def changed(node: AuthState) -> None:
        principal = await node.authenticate(issued.auth_value)
        assert principal.roles == ("viewer",)
        assert dict(principal.claims) == {"org": "acme"}

    await changed(a)
    await until(lambda: changed(b))
    # The synchronous per-request path (what the middleware calls first) agrees.
    for node in (a, b):
        principal = node.mode.authenticate_from_memory(issued.auth_value)
        assert principal is None or principal.roles == ("viewer",)


@modes("hybrid")
async def test_hybrid_tokens_go_stale_and_the_refresh_carries_the_new_roles(
    two_nodes: tuple[AuthState, AuthState],
) -> None:
    a, b = two_nodes
    issued = await a.login("alice", roles=("admin",))
    assert issued.refresh_value is not None
    assert await roles_on(b, issued.auth_value) == ("admin",)
    await a.set_roles("alice", ("viewer",))
    with pytest.raises(StaleToken) as stale:
        await a.authenticate(issued.auth_value)
    assert stale.value.code == "token_stale" and stale.value.status_code == 401

    async def refused_on_b() -> None:
        with pytest.raises(StaleToken):
            await b.authenticate(issued.auth_value)

    await until(refused_on_b)
    renewed = await b.refresh(issued.refresh_value)
    assert renewed.principal.roles == ("viewer",)
    for node in (a, b):
        assert await roles_on(node, renewed.auth_value) == ("viewer",)


@modes("stateless")
async def test_stateless_tokens_are_refused_and_a_new_login_gets_the_new_roles(
    two_nodes: tuple[AuthState, AuthState],
) -> None:
    """Stateless mode refuses (it has nothing to re-issue from without a store read per
    request); the next login carries the stored roles even if the caller passes old ones."""
    a, b = two_nodes
    issued = await a.login("alice", roles=("admin",))
    assert await roles_on(b, issued.auth_value) == ("admin",)
    await a.set_roles("alice", ("viewer",))

    async def refused(node: AuthState) -> None:
        with pytest.raises(StaleToken):
            await node.authenticate(issued.auth_value)

    await refused(a)
    await until(lambda: refused(b))
    again = await b.login("alice", roles=("admin",))  # the application's stale idea
    assert again.principal.roles == ("viewer",)
    assert await roles_on(a, again.auth_value) == ("viewer",)


@modes("stateless", "hybrid")
async def test_claims_travel_in_the_token_and_reach_the_principal(
    two_nodes: tuple[AuthState, AuthState],
) -> None:
    a, b = two_nodes
    await a.set_claims("bob", {"tenant": "t-42", "limits": {"seats": 5}})
    issued = await a.login("bob")
    principal = await b.authenticate(issued.auth_value)
    assert dict(principal.claims) == {"tenant": "t-42", "limits": {"seats": 5}}
    assert "rv" not in principal.claims  # authstate's own claims are not the application's
    with pytest.raises(TypeError):
        principal.claims["tenant"] = "other"  # type: ignore[index]


@modes("session", "hybrid", "stateless")
async def test_new_logins_on_any_node_get_the_new_roles(
    two_nodes: tuple[AuthState, AuthState],
) -> None:
    a, b = two_nodes
    await a.set_roles("carol", ("staff",))
    issued = await b.login("carol", roles=("admin",))
    assert issued.principal.roles == ("staff",)
    assert await roles_on(a, issued.auth_value) == ("staff",)


@modes("session", "hybrid")
async def test_a_record_written_by_a_login_racing_the_change_is_refused(
    two_nodes: tuple[AuthState, AuthState],
) -> None:
    """A login that read the grants before a change and stored its record after the store
    rewrote the user's records holds the old roles under the old version: refused."""
    a, b = two_nodes
    issued = await a.login("dave", roles=("admin",))
    store = a.store
    record = (await store.list_sessions("dave"))[0]
    await a.set_roles("dave", ("viewer",))
    # Put the record back as the racing login wrote it: old roles, old version.
    await store.delete_session(record.key)
    await store.create_session(record)
    for node in (a, b):
        node.mode.forget(issued.auth_value)
    if a.settings.mode == "session":
        for node in (a, b):
            await until(lambda node=node: _refused(node, issued.auth_value))
    else:
        assert issued.refresh_value is not None
        with pytest.raises(InvalidRefresh):  # on the node that made the change
            await a.refresh(issued.refresh_value)


async def _refused(node: AuthState, auth_value: str) -> None:
    node.mode.forget(auth_value)
    with pytest.raises(AuthenticationError):
        await node.authenticate(auth_value)


@modes("session")
async def test_bad_roles_and_claims_are_refused_without_a_change(
    two_nodes: tuple[AuthState, AuthState],
) -> None:
    a, _ = two_nodes
    for claims in (
        {"sub": "admin"},
        {"roles": ["admin"]},
        {"authstate_x": 1},
        {"big": "x" * 1100},
        {"n": float("nan")},
        {"deep": {"a": {"b": {"c": {"d": 1}}}}},
        {"obj": object()},
        ["not", "an", "object"],
    ):
        with pytest.raises(BadRequest):
            await a.set_claims("erin", claims)  # type: ignore[arg-type]
    for roles in (["has space"], ["x"] * 33, "admin"):
        with pytest.raises(BadRequest):
            await a.set_roles("erin", roles)  # type: ignore[arg-type]
    assert await a.store.get_user_grants("erin") is None


@modes("session")
async def test_a_change_is_audited_with_roles_and_claim_names_only(
    two_nodes: tuple[AuthState, AuthState], caplog: pytest.LogCaptureFixture
) -> None:
    a, _ = two_nodes
    with caplog.at_level("INFO", logger="authstate.audit"):
        await a.set_roles("frank", ("staff",))
        await a.set_claims("frank", {"secret_plan": "launch-codes-1234"})
    events = [r for r in caplog.records if getattr(r, "event", None) == "grants_changed"]
    assert [(r.roles, r.roles_version, r.claim_names) for r in events] == [  # type: ignore[attr-defined]
        (["staff"], 1, []),
        (["staff"], 2, ["secret_plan"]),
    ]
    assert "launch-codes-1234" not in caplog.text
