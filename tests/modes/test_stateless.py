"""Stateless mode: a JWT in the cookie, revocation through the revocation state."""

from __future__ import annotations

import pytest

from authstate._time import FrozenClock
from authstate.crypto.jwt import parse_compact
from authstate.errors import AuthenticationError
from tests.modes.conftest import MakeAuth

pytestmark = pytest.mark.anyio


async def test_a_login_token_authenticates_the_user_with_roles(make_auth: MakeAuth) -> None:
    auth = await make_auth("stateless")
    issued = await auth.login("u1", ["staff"])
    principal = await auth.authenticate(issued.auth_value)
    assert principal.user_id == "u1"
    assert principal.roles == ("staff",)
    assert principal.session is None and principal.token is not None
    assert issued.auth_max_age == 15 * 60


async def test_the_token_carries_the_contract_claims_and_header(make_auth: MakeAuth) -> None:
    auth = await make_auth("stateless")
    issued = await auth.login("u1", ["staff"])
    parsed = parse_compact(issued.auth_value)
    assert parsed.header["typ"] == "at+jwt"
    assert parsed.header["alg"] == "EdDSA"
    assert parsed.header["kid"] == auth.context.keys.ring.signing_key().kid
    for claim in ("iss", "aud", "sub", "iat", "nbf", "exp", "jti", "roles"):
        assert claim in parsed.claims
    assert parsed.claims["exp"] - parsed.claims["iat"] == 900
    assert "email" not in parsed.claims and "password" not in parsed.claims


async def test_a_token_expires_after_its_lifetime_and_leeway(
    make_auth: MakeAuth, clock: FrozenClock
) -> None:
    auth = await make_auth("stateless")
    issued = await auth.login("u1", [])
    clock.advance(15 * 60 + 29)
    await auth.authenticate(issued.auth_value)  # within the 30 s leeway
    clock.advance(2)
    with pytest.raises(AuthenticationError):
        await auth.authenticate(issued.auth_value)


async def test_logout_revokes_the_token_at_once(make_auth: MakeAuth) -> None:
    auth = await make_auth("stateless")
    issued = await auth.login("u1", [])
    principal = await auth.authenticate(issued.auth_value)
    await auth.logout(principal)
    with pytest.raises(AuthenticationError):
        await auth.authenticate(issued.auth_value)


async def test_logout_everywhere_kills_every_token_of_the_user_only(make_auth: MakeAuth) -> None:
    auth = await make_auth("stateless")
    first = await auth.login("u1", [])
    second = await auth.login("u1", [])
    other = await auth.login("u2", [])
    await auth.logout_everywhere("u1")
    for issued in (first, second):
        with pytest.raises(AuthenticationError):
            await auth.authenticate(issued.auth_value)
    await auth.authenticate(other.auth_value)


async def test_a_login_after_logout_everywhere_in_the_same_second_works(
    make_auth: MakeAuth,
) -> None:
    auth = await make_auth("stateless")  # the frozen clock never moves: same second throughout
    before = await auth.login("u1", [])
    await auth.logout_everywhere("u1")
    after = await auth.login("u1", [])
    with pytest.raises(AuthenticationError):
        await auth.authenticate(before.auth_value)
    assert (await auth.authenticate(after.auth_value)).user_id == "u1"


async def test_a_tampered_token_is_rejected(make_auth: MakeAuth) -> None:
    auth = await make_auth("stateless")
    token = (await auth.login("u1", [])).auth_value
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload[:-2]}AA.{signature}"
    with pytest.raises(AuthenticationError):
        await auth.authenticate(forged)


async def test_a_cached_verification_never_outlives_a_revocation(make_auth: MakeAuth) -> None:
    auth = await make_auth("stateless")
    issued = await auth.login("u1", [])
    for _ in range(3):  # warm the verified-token cache
        principal = await auth.authenticate(issued.auth_value)
    await auth.logout(principal)
    with pytest.raises(AuthenticationError):
        await auth.authenticate(issued.auth_value)


async def test_a_cached_verification_never_outlives_expiry(
    make_auth: MakeAuth, clock: FrozenClock
) -> None:
    auth = await make_auth("stateless")
    issued = await auth.login("u1", [])
    await auth.authenticate(issued.auth_value)
    clock.advance(16 * 60)
    with pytest.raises(AuthenticationError):
        await auth.authenticate(issued.auth_value)


async def test_stateless_mode_keeps_no_sessions(make_auth: MakeAuth) -> None:
    auth = await make_auth("stateless")
    await auth.login("u1", [])
    assert await auth.store.list_sessions("u1") == []


async def test_nodes_sharing_a_sqlite_file_share_keys_and_revocations_within_a_second(
    make_auth: MakeAuth, tmp_path: object
) -> None:
    import anyio

    url = f"sqlite:///{tmp_path}/shared.db"
    node_a = await make_auth("stateless", store=url, secret="k" * 40)
    node_b = await make_auth("stateless", store=url, secret="k" * 40)
    issued = await node_a.login("u1", [])
    principal = await node_b.authenticate(issued.auth_value)  # same key ring on both nodes
    await node_a.logout_everywhere(principal.user_id)
    # A hang guard, not a latency claim: how fast it arrives is the bench's revocation table.
    with anyio.fail_after(30):
        while True:
            try:
                await node_b.authenticate(issued.auth_value)
            except AuthenticationError:
                break
            await anyio.sleep(0.01)


async def test_a_restarted_node_still_verifies_tokens_it_signed_before(
    make_auth: MakeAuth, tmp_path: object
) -> None:
    url = f"sqlite:///{tmp_path}/keys.db"
    before = await make_auth("stateless", store=url)
    issued = await before.login("u1", [])
    await before.stop()
    after = await make_auth("stateless", store=url)
    assert (await after.authenticate(issued.auth_value)).user_id == "u1"


async def test_key_rotation_keeps_old_tokens_valid_and_signs_new_ones_with_the_new_key(
    make_auth: MakeAuth,
) -> None:
    auth = await make_auth("stateless")
    old = await auth.login("u1", [])
    new_key = await auth.context.keys.rotate()
    new = await auth.login("u1", [])
    assert parse_compact(new.auth_value).header["kid"] == new_key.kid
    assert parse_compact(old.auth_value).header["kid"] != new_key.kid
    await auth.authenticate(old.auth_value)
    await auth.authenticate(new.auth_value)
    kids = {k["kid"] for k in auth.jwks()["keys"]}
    assert new_key.kid in kids and parse_compact(old.auth_value).header["kid"] in kids
