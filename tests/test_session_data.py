"""Server-side session data through the library API (``authstate.session_data``), as an
application calls it: ``auth.session_data()``, ``SessionData.save()`` and
``auth.update_session_data()``, on two nodes sharing a store (one SQLite file).

A node's session cache never answers for data: a change saved on one node is read on the
other at once, although both have the session cached.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from starlette.requests import Request

from authstate import AuthState, NotFound, SessionData, SessionDataTooLarge
from authstate.errors import AuthenticationError
from authstate.settings import Settings

pytestmark = pytest.mark.anyio

SECRET = "s" * 40


@pytest.fixture(params=["session", "hybrid"])
async def nodes(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[AuthState, AuthState]]:
    settings = Settings.from_env(
        {},
        mode=request.param,
        store=f"sqlite:///{tmp_path / 'shared.db'}",
        secret=SECRET,
        session_data_max_bytes=200,
    )
    async with AuthState(settings) as a, AuthState(settings) as b:
        yield a, b


async def test_data_given_at_login_is_read_and_changes_are_seen_on_the_other_node_at_once(
    nodes: tuple[AuthState, AuthState],
) -> None:
    a, b = nodes
    issued = await a.login("alice", data={"locale": "fr"})
    # Both nodes authenticate (and cache) the credential before the change.
    on_a, on_b = await a.authenticate(issued.auth_value), await b.authenticate(issued.auth_value)
    assert dict(await b.session_data(on_b)) == {"locale": "fr"}

    data = await a.session_data(on_a)
    data["cart"] = [1, 2]
    del data["locale"]
    assert data.dirty
    await data.save()
    assert not data.dirty and data.to_dict() == {"cart": [1, 2]}

    seen = await b.session_data(await b.authenticate(issued.auth_value))
    assert seen.to_dict() == {"cart": [1, 2]} and seen.session_id == on_a.binding


async def test_save_sends_only_its_own_keys_so_other_nodes_keys_stay(
    nodes: tuple[AuthState, AuthState],
) -> None:
    a, b = nodes
    principal = (await a.login("alice", data={"x": 1, "y": 1})).principal
    on_a = await a.session_data(principal)
    await b.update_session_data(principal, {"y": 2, "z": 3})  # meanwhile, on another node
    on_a["x"] = 10
    await on_a.save()
    # a's stale view of y is not written back: last writer wins per key.
    assert on_a.to_dict() == {"x": 10, "y": 2, "z": 3}
    assert (await b.session_data(principal)).to_dict() == {"x": 10, "y": 2, "z": 3}


async def test_refusals_happen_before_any_write(nodes: tuple[AuthState, AuthState]) -> None:
    a, b = nodes
    principal = (await a.login("alice", data={"keep": True})).principal
    data = await a.session_data(principal)
    with pytest.raises(TypeError, match="not JSON"):
        data["when"] = {1, 2}
    with pytest.raises(TypeError, match="not a string"):
        data[3] = "x"  # type: ignore[index]
    with pytest.raises(ValueError, match="JSON cannot hold"):
        await a.update_session_data(principal, {"n": float("nan")})
    assert not data.dirty
    data["big"] = "x" * 300
    with pytest.raises(SessionDataTooLarge, match="AUTHSTATE_SESSION_DATA_MAX_BYTES"):
        await data.save()
    assert data.dirty  # still pending: the caller may shrink it and save again
    assert (await b.session_data(principal)).to_dict() == {"keep": True}
    data["big"] = "small"
    await data.save()
    assert (await b.session_data(principal)).to_dict() == {"keep": True, "big": "small"}


async def test_the_data_ends_with_the_session(nodes: tuple[AuthState, AuthState]) -> None:
    a, b = nodes
    principal = (await a.login("alice", data={"k": 1})).principal
    data = await a.session_data(principal)
    await b.logout(principal)
    data["k"] = 2
    with pytest.raises(AuthenticationError):
        await data.save()
    with pytest.raises(AuthenticationError):
        await b.session_data(principal)
    with pytest.raises(AuthenticationError):
        await b.update_session_data(principal, {"k": 3})


async def test_hybrid_data_belongs_to_the_family_and_survives_refresh(tmp_path: Path) -> None:
    settings = Settings.from_env({}, mode="hybrid", store="memory://")
    async with AuthState(settings) as auth:
        issued = await auth.login("alice")
        await auth.update_session_data(issued.principal, {"step": 1})
        assert issued.refresh_value is not None
        rotated = await auth.refresh(issued.refresh_value)
        assert rotated.principal.binding == issued.principal.binding
        assert (await auth.session_data(rotated.principal)).to_dict() == {"step": 1}
        assert "step" not in rotated.auth_value


async def test_stateless_mode_has_none_and_says_so() -> None:
    settings = Settings.from_env({}, mode="stateless", store="memory://")
    async with AuthState(settings) as auth:
        principal = (await auth.login("alice")).principal
        with pytest.raises(NotFound, match="only in session and hybrid modes"):
            await auth.session_data(principal)
        with pytest.raises(NotFound):
            await auth.update_session_data(principal, {"a": 1})


async def test_a_request_without_a_principal_is_unauthenticated() -> None:
    settings = Settings.from_env({}, mode="session", store="memory://")
    async with AuthState(settings) as auth:
        request = Request({"type": "http", "method": "GET", "headers": [], "path": "/"})
        with pytest.raises(AuthenticationError):
            await auth.session_data(request)


def test_session_data_is_a_mapping() -> None:
    class NoStore:
        pass

    data = SessionData(NoStore(), "h", {"a": 1}, 100)  # type: ignore[arg-type]
    assert data["a"] == 1 and data.get("b") is None and len(data) == 1 and list(data) == ["a"]
    assert "unsaved=False" in repr(data)
