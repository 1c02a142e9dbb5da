"""L. Live roles and claims (LR1-LR4): a downgrade ends the higher role everywhere, no
token can claim to be newer than it is, and custom claims cannot pose as authstate's."""

from __future__ import annotations

import json

import pytest

from authstate import BadRequest
from authstate.cookies import AUTH_COOKIE, REFRESH_COOKIE
from authstate.crypto.ids import b64url_encode
from authstate.custom_claims import MAX_CLAIMS_BYTES
from tests.security.harness import ORIGIN, Node, decode_segment

pytestmark = pytest.mark.anyio


async def me(node: Node, auth_value: str) -> tuple[int, dict[str, object]]:
    response = await node.raw("GET", "/auth/me", cookie=f"{AUTH_COOKIE}={auth_value}")
    assert response.status_code in (200, 401), response.text
    return response.status_code, response.json()


# -- LR1 ---------------------------------------------------------------------------------------
async def test_a_downgrade_ends_the_higher_role_at_once(node: Node) -> None:
    """LR1: after ``set_roles`` takes "admin" away, the credential issued with it never
    answers "admin" again: the same session shows the new roles, an access token is 401
    ``token_stale``, and the refresh (hybrid) carries the new roles."""
    alice = node.users["alice"]
    await node.auth.set_roles(alice, ("admin",))
    session = await node.login("alice")
    status, body = await me(node, session.auth)
    assert (status, body["user"]) == (200, {"id": alice, "username": "alice", "roles": ["admin"]})

    await node.auth.set_roles(alice, ("viewer",))
    status, body = await me(node, session.auth)
    if node.mode == "session":
        assert status == 200 and body["user"]["roles"] == ["viewer"]  # type: ignore[index]
    else:
        assert (status, body["error"]) == (401, "token_stale")
    if node.mode == "hybrid":
        refreshed = await node.raw(
            "POST",
            "/auth/refresh",
            cookie=f"{REFRESH_COOKIE}={session.refresh}",
            headers={"x-csrf-token": session.csrf, "origin": ORIGIN},
        )
        assert refreshed.status_code == 200, refreshed.text
        assert refreshed.json()["user"]["roles"] == ["viewer"]


# -- LR2 ---------------------------------------------------------------------------------------
async def test_a_token_cannot_claim_a_newer_roles_version(jwt_node: Node) -> None:
    """LR2: the old admin token with its ``rv`` raised (signature kept) is the plain 401;
    a token signed with the node's key whose ``rv`` is not an int >= 0 is refused; one
    without ``rv`` (version 0) issued before the change is ``token_stale``."""
    node = jwt_node
    alice = node.users["alice"]
    await node.auth.set_roles(alice, ("admin",))
    session = await node.login("alice")
    await node.auth.set_roles(alice, ("viewer",))
    header, payload, signature = session.auth.split(".")
    claims = decode_segment(payload)
    assert claims["rv"] == 1 and claims["roles"] == ["admin"]
    bumped = b64url_encode(json.dumps({**claims, "rv": 99}).encode())
    status, body = await me(node, f"{header}.{bumped}.{signature}")
    assert (status, body["error"]) == (401, "unauthenticated")

    for bad in ("2", 2.0, True, -1, None, [2]):
        token = node.mint(await node.live_claims("alice", roles=["admin"], rv=bad))
        status, body = await me(node, token)
        assert (status, body["error"]) == (401, "unauthenticated"), bad
    token = node.mint(await node.live_claims("alice", roles=["admin"]))
    status, body = await me(node, token)
    assert (status, body["error"]) == (401, "token_stale")


# -- LR3 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "someone-else"},
        {"roles": ["admin"]},
        {"rv": 10**6},
        {"gen": 10**6},
        {"sid": "x"},
        {"exp": 2**40},
        {"authstate:admin": True},
        {"big": "x" * MAX_CLAIMS_BYTES},
        {"nan": float("nan")},
    ],
    ids=lambda c: next(iter(c)),
)
async def test_custom_claims_cannot_pose_as_authstates_or_grow_the_token(
    node: Node, claims: dict[str, object]
) -> None:
    """LR3: ``set_claims`` refuses reserved names (registered JWT and OpenID Connect names,
    ``roles``/``sid``/``gen``/``rv``, anything starting with ``authstate``), non-JSON
    values and more than ``MAX_CLAIMS_BYTES`` of JSON, with nothing stored or published."""
    before = await node.snapshot()
    with pytest.raises(BadRequest):
        await node.auth.set_claims(node.users["alice"], claims)
    assert await node.store.get_user_grants(node.users["alice"]) is None
    assert await node.snapshot() == before


async def test_roles_and_claims_that_together_overflow_the_cookie_are_refused(
    node: Node,
) -> None:
    """LR3: 32 roles of 64 characters and 1 KiB of claims each fit alone, not together:
    the second change is refused, so every login keeps working."""
    alice = node.users["alice"]
    many = tuple(f"{i:02d}" + "r" * 62 for i in range(32))
    await node.auth.set_roles(alice, many)
    with pytest.raises(BadRequest):
        await node.auth.set_claims(alice, {"pad": "y" * (MAX_CLAIMS_BYTES - 20)})
    session = await node.login("alice")
    status, body = await me(node, session.auth)
    assert status == 200 and len(body["user"]["roles"]) == 32  # type: ignore[index]
