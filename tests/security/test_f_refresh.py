"""F. Hybrid refresh tokens (T47-T52): each refresh token works once, a replay outside the
grace window kills the whole family, concurrent refreshes never fork it, and the refresh
endpoint is as guarded as every other unsafe route.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from authstate.cookies import AUTH_COOKIE, REFRESH_COOKIE
from tests.security.harness import ORIGIN, PASSWORD, Node, Session, running, set_cookies

pytestmark = pytest.mark.anyio

GRACE = 10


@pytest.fixture(params=["memory", "sqlite"])
async def hybrid(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Node]:
    store = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'h.db'}"
    async with running("hybrid", store) as node:
        yield node


async def refresh(
    node: Node, token: str, csrf: str, *, headers: dict[str, str] | None = None
) -> httpx.Response:
    """POST /auth/refresh with only the refresh cookie (the access token may have expired)."""
    return await node.raw(
        "POST",
        "/auth/refresh",
        cookie=f"{REFRESH_COOKIE}={token}",
        headers={"x-csrf-token": csrf, **(headers or {})},
    )


def new_refresh(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return set_cookies(response)[REFRESH_COOKIE]


async def family_keys(node: Node, session: Session) -> list[str]:
    return [r.key for r in await node.store.list_sessions(session.user_id, kind="refresh")]


# -- T47 -----------------------------------------------------------------------------------------
async def test_every_refresh_rotates_the_refresh_token(hybrid: Node) -> None:
    """T47: R0 gives a new access token A1 and refresh token R1 != R0, both as cookies;
    R1 then works and gives R2."""
    session = await hybrid.login("alice")
    r0, a0 = session.refresh, session.auth
    assert r0 is not None
    first = await refresh(hybrid, r0, session.csrf)
    r1 = new_refresh(first)
    a1 = set_cookies(first)[AUTH_COOKIE]
    assert r1 != r0 and a1 != a0
    r2 = new_refresh(await refresh(hybrid, r1, session.csrf))
    assert len({r0, r1, r2}) == 3


# -- T48 -----------------------------------------------------------------------------------------
async def test_a_replayed_refresh_token_revokes_the_whole_family(
    hybrid: Node, caplog: pytest.LogCaptureFixture
) -> None:
    """T48: after R0 -> R1 and the grace window, R0 presented again (the thief) is 401 and
    kills the family: the legitimate R1 and the access token A1 are 401 too, the user has
    to log in again, and a ``refresh_reuse`` audit warning is logged."""
    caplog.set_level(logging.WARNING, logger="authstate.audit")
    session = await hybrid.login("alice")
    r0 = session.refresh
    assert r0 is not None
    rotated = await refresh(hybrid, r0, session.csrf)
    r1, a1 = new_refresh(rotated), set_cookies(rotated)[AUTH_COOKIE]
    hybrid.clock.advance(GRACE + 1)
    assert (await refresh(hybrid, r0, session.csrf)).status_code == 401
    assert (await refresh(hybrid, r1, session.csrf)).status_code == 401
    assert await hybrid.whoami_token(a1) is None
    assert await family_keys(hybrid, session) == []
    events = [getattr(r, "event", None) for r in caplog.records]
    assert "refresh_reuse" in events
    again = await hybrid.login("alice")
    assert (await again.me()).status_code == 200


async def test_within_the_grace_window_a_repeat_gets_the_same_successor(hybrid: Node) -> None:
    """T48/T49 (docs/concepts.md): a refresh token rotated less than AUTHSTATE_REFRESH_GRACE ago
    yields the very same successor (a lost response or a second tab), never a second one."""
    session = await hybrid.login("alice")
    assert session.refresh is not None
    r1 = new_refresh(await refresh(hybrid, session.refresh, session.csrf))
    hybrid.clock.advance(GRACE - 1)
    assert new_refresh(await refresh(hybrid, session.refresh, session.csrf)) == r1
    assert await family_keys(hybrid, session) == [hashlib.sha256(r1.encode()).hexdigest()]


# -- T49 -----------------------------------------------------------------------------------------
async def test_twenty_concurrent_refreshes_never_fork_the_family(hybrid: Node) -> None:
    """T49: 20 parallel POST /auth/refresh with the same R0: every success carries the same
    successor, the store holds exactly one live family keyed by it, and after the grace
    window R0 is a reuse like any other. (PostgreSQL and Redis run the same race in the
    store contract suite.)"""
    session = await hybrid.login("alice")
    r0 = session.refresh
    assert r0 is not None
    responses = await asyncio.gather(*(refresh(hybrid, r0, session.csrf) for _ in range(20)))
    successes = [r for r in responses if r.status_code == 200]
    assert successes and all(r.status_code in (200, 401) for r in responses)
    successors = {set_cookies(r)[REFRESH_COOKIE] for r in successes}
    assert len(successors) == 1
    (r1,) = successors
    assert await family_keys(hybrid, session) == [hashlib.sha256(r1.encode()).hexdigest()]
    hybrid.clock.advance(GRACE + 1)
    assert (await refresh(hybrid, r0, session.csrf)).status_code == 401
    assert await family_keys(hybrid, session) == []


# -- T50 -----------------------------------------------------------------------------------------
async def test_the_refresh_endpoint_is_a_guarded_post(hybrid: Node) -> None:
    """T50: GET is 405; a POST without the CSRF token (with or without the access cookie),
    cross-site, or from a foreign Origin is 403 and R0 still works afterwards; the access
    JWT in the refresh cookie is 401; a family past its absolute lifetime is 401."""
    session = await hybrid.login("alice")
    r0 = session.refresh
    assert r0 is not None
    assert (await session.client.get("/auth/refresh")).status_code == 405
    both = f"{AUTH_COOKIE}={session.auth}; {REFRESH_COOKIE}={r0}"
    refused = [
        await hybrid.raw("POST", "/auth/refresh", cookie=f"{REFRESH_COOKIE}={r0}"),
        await hybrid.raw("POST", "/auth/refresh", cookie=both),
        await refresh(hybrid, r0, session.csrf, headers={"sec-fetch-site": "cross-site"}),
        await refresh(hybrid, r0, session.csrf, headers={"origin": "https://evil.test"}),
        await refresh(hybrid, r0, "A" * 22 + "." + "B" * 43),
    ]
    for response in refused:
        assert response.status_code == 403, response.text
        assert "set-cookie" not in response.headers
    assert (await refresh(hybrid, session.auth, session.csrf)).status_code == 401
    assert (await refresh(hybrid, r0, session.csrf, headers={"origin": ORIGIN})).status_code == 200
    late = await hybrid.login("alice")
    assert late.refresh is not None
    hybrid.clock.advance(hybrid.auth.settings.refresh_ttl_seconds + 1)
    assert (await refresh(hybrid, late.refresh, late.csrf)).status_code == 401


# -- T51 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("action", ["logout", "logout-all", "password"])
async def test_refresh_after_logout_or_password_change_is_refused(
    hybrid: Node, action: str
) -> None:
    """T51: a saved refresh token after logout, logout everywhere or (for another client)
    a password change: 401 and no cookie."""
    victim = await hybrid.login("alice")
    actor = victim if action != "password" else await hybrid.login("alice")
    saved = victim.refresh
    assert saved is not None
    if action == "password":
        body = {"current_password": PASSWORD, "new_password": "an0ther passw0rd"}
        assert (await actor.post("/auth/password", json=body)).status_code == 204
    else:
        assert (await actor.post(f"/auth/{action}")).status_code == 204
    response = await refresh(hybrid, saved, victim.csrf)
    assert response.status_code == 401
    assert "set-cookie" not in response.headers


# -- T52 -----------------------------------------------------------------------------------------
async def test_access_tokens_are_short_and_the_refresh_cookie_is_narrow(hybrid: Node) -> None:
    """T52: the access token lives exactly AUTHSTATE_ACCESS_TTL (15 min); the refresh
    cookie is ``__Secure-`` with ``Path=/auth``, HttpOnly, Secure, SameSite=Strict and a
    Max-Age within the family's 30-day lifetime."""
    async with hybrid.client() as client:
        response = await client.post(
            "/auth/login", json={"username": "alice", "password": PASSWORD}
        )
    claims = Session(hybrid, client, "", "", set_cookies(response)).token_claims()
    assert claims["exp"] - claims["iat"] == 900
    header = next(
        h for h in response.headers.get_list("set-cookie") if h.startswith(REFRESH_COOKIE)
    )
    assert REFRESH_COOKIE.startswith("__Secure-")
    attributes = {part.strip().split("=")[0]: part.strip() for part in header.split(";")[1:]}
    assert attributes["Path"] == "Path=/auth"
    assert {"Secure", "HttpOnly"} <= set(attributes)
    assert attributes["SameSite"] == "SameSite=Strict"
    assert "Domain" not in attributes
    assert 0 < int(attributes["Max-Age"].split("=")[1]) <= 30 * 86_400


# -- the family belongs to the caller (red team F3) ------------------------------------------------
async def refresh_as(node: Node, access: str, token: str, csrf: str) -> httpx.Response:
    """POST /auth/refresh as a browser holding ``access`` beside the refresh cookie ``token``
    (a sibling host can plant a ``__Secure-`` refresh cookie under ``Path=/auth``)."""
    return await node.raw(
        "POST",
        "/auth/refresh",
        cookie=f"{AUTH_COOKIE}={access}; {REFRESH_COOKIE}={token}",
        headers={"x-csrf-token": csrf, "origin": ORIGIN, "sec-fetch-site": "same-origin"},
    )


async def test_a_refresh_cookie_of_another_family_never_rotates_beside_an_access_cookie(
    hybrid: Node,
) -> None:
    """F3: alice's access cookie and CSRF token with mallory's refresh cookie (planted) is
    401 invalid_refresh and changes nothing: alice is not switched into mallory's account,
    and mallory's refresh token still works afterwards. Alice with her own is 200."""
    alice, mallory = await hybrid.login("alice"), await hybrid.login("mallory")
    assert alice.refresh is not None and mallory.refresh is not None
    before = await hybrid.snapshot()
    response = await refresh_as(hybrid, alice.auth, mallory.refresh, alice.csrf)
    assert (response.status_code, response.json()["error"]) == (401, "invalid_refresh")
    assert "set-cookie" not in response.headers
    assert await hybrid.snapshot() == before
    own = await refresh_as(hybrid, alice.auth, alice.refresh, alice.csrf)
    assert own.status_code == 200 and own.json()["user"]["id"] == alice.user_id
    assert (await refresh(hybrid, mallory.refresh, mallory.csrf)).status_code == 200


async def test_a_grace_window_repeat_of_another_family_is_refused_beside_an_access_cookie(
    hybrid: Node,
) -> None:
    """F3, the grace path: mallory's just-rotated refresh token (which would get the same
    successor for 10 s) beside alice's access cookie is 401 and issues no credential."""
    alice, mallory = await hybrid.login("alice"), await hybrid.login("mallory")
    assert mallory.refresh is not None
    r0 = mallory.refresh
    new_refresh(await refresh(hybrid, r0, mallory.csrf))
    response = await refresh_as(hybrid, alice.auth, r0, alice.csrf)
    assert (response.status_code, response.json()["error"]) == (401, "invalid_refresh")
    assert "set-cookie" not in response.headers
