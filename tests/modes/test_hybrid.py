"""Hybrid mode: access JWT + rotating refresh token with reuse detection and a grace window."""

from __future__ import annotations

import asyncio

import pytest

from authstate._time import FrozenClock
from authstate.crypto.ids import hash_secret
from authstate.errors import AuthenticationError, InvalidRefresh
from tests.modes.conftest import MakeAuth

pytestmark = pytest.mark.anyio


async def test_login_issues_an_access_jwt_bound_to_a_refresh_family(make_auth: MakeAuth) -> None:
    auth = await make_auth("hybrid")
    issued = await auth.login("u1", ["staff"])
    assert issued.refresh_value is not None and len(issued.refresh_value) == 43
    principal = await auth.authenticate(issued.auth_value)
    family = await auth.store.get_session(hash_secret(issued.refresh_value))
    assert family is not None and family.kind == "refresh"
    assert principal.session is not None and principal.session.id == family.handle
    assert issued.auth_max_age == 900 and issued.refresh_max_age == 30 * 86400


async def test_refresh_rotates_the_refresh_token_and_issues_a_new_access_token(
    make_auth: MakeAuth, clock: FrozenClock
) -> None:
    auth = await make_auth("hybrid")
    issued = await auth.login("u1", [])
    clock.advance(60)
    refreshed = await auth.refresh(issued.refresh_value or "")
    assert refreshed.refresh_value != issued.refresh_value
    assert refreshed.auth_value != issued.auth_value
    assert (await auth.authenticate(refreshed.auth_value)).user_id == "u1"
    assert await auth.store.get_session(hash_secret(issued.refresh_value or "")) is None


async def test_a_retry_within_the_grace_window_gets_the_same_successor(
    make_auth: MakeAuth, clock: FrozenClock
) -> None:
    auth = await make_auth("hybrid")
    issued = await auth.login("u1", [])
    first = await auth.refresh(issued.refresh_value or "")
    clock.advance(5)
    second = await auth.refresh(issued.refresh_value or "")
    assert second.refresh_value == first.refresh_value
    await auth.authenticate(second.auth_value)


async def test_concurrent_refreshes_from_two_tabs_agree_on_one_successor(
    make_auth: MakeAuth,
) -> None:
    auth = await make_auth("hybrid")
    issued = await auth.login("u1", [])
    results = await asyncio.gather(*(auth.refresh(issued.refresh_value or "") for _ in range(5)))
    assert len({r.refresh_value for r in results}) == 1
    assert len(await auth.store.list_sessions("u1")) == 1


async def test_reuse_after_the_grace_window_revokes_the_whole_family(
    make_auth: MakeAuth, clock: FrozenClock
) -> None:
    auth = await make_auth("hybrid")
    issued = await auth.login("u1", [])
    legit = await auth.refresh(issued.refresh_value or "")
    clock.advance(11)
    with pytest.raises(InvalidRefresh):
        await auth.refresh(issued.refresh_value or "")  # the thief replays the old token
    with pytest.raises(InvalidRefresh):
        await auth.refresh(legit.refresh_value or "")  # and the family is gone
    with pytest.raises(AuthenticationError):
        await auth.authenticate(legit.auth_value)  # its access token died with it


async def test_an_unknown_or_malformed_refresh_token_is_refused(make_auth: MakeAuth) -> None:
    auth = await make_auth("hybrid")
    for value in ("A" * 43, "", "not a token", "x" * 10_000):
        with pytest.raises(InvalidRefresh):
            await auth.refresh(value)


async def test_logout_revokes_the_family_and_its_access_tokens(make_auth: MakeAuth) -> None:
    auth = await make_auth("hybrid")
    issued = await auth.login("u1", [])
    principal = await auth.authenticate(issued.auth_value)
    await auth.logout(principal)
    with pytest.raises(AuthenticationError):
        await auth.authenticate(issued.auth_value)
    with pytest.raises(InvalidRefresh):
        await auth.refresh(issued.refresh_value or "")


async def test_logout_racing_a_refresh_never_resurrects_the_family(make_auth: MakeAuth) -> None:
    auth = await make_auth("hybrid")
    issued = await auth.login("u1", [])
    principal = await auth.authenticate(issued.auth_value)
    outcome = await asyncio.gather(
        auth.logout(principal), auth.refresh(issued.refresh_value or ""), return_exceptions=True
    )
    refreshed = outcome[1]
    assert await auth.store.list_sessions("u1") == []
    if not isinstance(refreshed, BaseException):
        with pytest.raises(InvalidRefresh):
            await auth.refresh(refreshed.refresh_value or "")
        with pytest.raises(AuthenticationError):
            await auth.authenticate(refreshed.auth_value)


async def test_logout_everywhere_kills_access_tokens_and_refresh_tokens(
    make_auth: MakeAuth,
) -> None:
    auth = await make_auth("hybrid")
    devices = [await auth.login("u1", []) for _ in range(2)]
    await auth.logout_everywhere("u1")
    for issued in devices:
        with pytest.raises(AuthenticationError):
            await auth.authenticate(issued.auth_value)
        with pytest.raises(InvalidRefresh):
            await auth.refresh(issued.refresh_value or "")


async def test_the_family_expires_at_the_refresh_lifetime(
    make_auth: MakeAuth, clock: FrozenClock
) -> None:
    auth = await make_auth("hybrid", refresh_ttl="1h")
    issued = await auth.login("u1", [])
    clock.advance(3601)
    with pytest.raises(InvalidRefresh):
        await auth.refresh(issued.refresh_value or "")
