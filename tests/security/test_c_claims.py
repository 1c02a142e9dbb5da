"""C. Claims (T24-T31): a correctly signed token still has to be for us, from us, current,
of the right kind and for a user who may still sign in. Grey box: the tests hold the
server's key and a frozen clock; leeway is the default 30 s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from authstate.cookies import AUTH_COOKIE, CSRF_COOKIE, REFRESH_COOKIE
from tests.security.harness import Node, running

pytestmark = pytest.mark.anyio

LEEWAY = 30


async def accepted(node: Node, claims: dict[str, Any], **header: Any) -> bool:
    user = await node.whoami_token(node.mint(claims, **header))
    return user is not None


# -- T24 -----------------------------------------------------------------------------------------
async def test_expiry_holds_to_the_second_with_a_small_leeway(jwt_node: Node) -> None:
    """T24: exp = now+60 and now-L+1 are accepted; now-L and now-L-1 and no exp are 401;
    a real token replayed after exp + L is 401."""
    now = int(jwt_node.clock.now())
    base = await jwt_node.live_claims()
    assert await accepted(jwt_node, {**base, "exp": now + 60})
    assert await accepted(jwt_node, {**base, "exp": now - LEEWAY + 1})
    assert not await accepted(jwt_node, {**base, "exp": now - LEEWAY})
    assert not await accepted(jwt_node, {**base, "exp": now - LEEWAY - 1})
    assert not await accepted(jwt_node, _drop(base, "exp"))
    session = await jwt_node.login("alice")
    token = session.auth
    assert await jwt_node.whoami_token(token) == session.user_id
    jwt_node.clock.advance(jwt_node.auth.settings.access_ttl_seconds + LEEWAY - 1)
    assert await jwt_node.whoami_token(token) == session.user_id  # cached, still in leeway
    jwt_node.clock.advance(1)
    assert await jwt_node.whoami_token(token) is None


def _drop(claims: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in claims.items() if k not in names}


# -- T25 -----------------------------------------------------------------------------------------
async def test_not_yet_valid_and_future_issued_tokens_are_refused(jwt_node: Node) -> None:
    """T25: nbf = now+L+5 is 401, nbf = now+L-1 is accepted; iat an hour ahead is 401."""
    now = int(jwt_node.clock.now())
    base = await jwt_node.live_claims()
    assert not await accepted(jwt_node, {**base, "nbf": now + LEEWAY + 5})
    assert await accepted(jwt_node, {**base, "nbf": now + LEEWAY - 1})
    assert not await accepted(jwt_node, {**base, "iat": now + 3600})
    assert await accepted(jwt_node, {**base, "iat": now + LEEWAY - 1})


async def test_a_token_older_than_the_access_lifetime_is_refused_whatever_its_exp(
    jwt_node: Node,
) -> None:
    """T25 (C8): iat two hours ago with exp an hour ahead (a lifetime this server never
    issues, e.g. minted under an older, longer AUTHSTATE_ACCESS_TTL): 401."""
    now = int(jwt_node.clock.now())
    base = await jwt_node.live_claims()
    assert not await accepted(
        jwt_node, {**base, "iat": now - 7200, "nbf": now - 7200, "exp": now + 3600}
    )


# -- T26 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("claim", ["exp", "iat", "nbf", "jti", "sub", "aud", "iss"])
async def test_a_token_missing_a_required_claim_is_refused(jwt_node: Node, claim: str) -> None:
    """T26: each of exp, iat, nbf, jti, sub, aud, iss left out of an otherwise valid,
    correctly signed token: 401."""
    base = await jwt_node.live_claims()
    assert await accepted(jwt_node, base)
    assert not await accepted(jwt_node, _drop(base, claim))


async def test_a_token_without_typ_or_with_another_typ_is_refused(jwt_node: Node) -> None:
    """T26/T29 (d): no ``typ``, ``typ: JWT``, a refresh or session kind, or a case variant
    of ``at+jwt``: 401."""
    base = await jwt_node.live_claims()
    key = jwt_node.signing_key()
    assert not await accepted(jwt_node, base, typ=...)
    for typ in ("JWT", "refresh+jwt", "session+jwt", "AT+JWT", "application/at+jwt", ""):
        assert not await accepted(jwt_node, base, typ=typ), typ
    assert await accepted(jwt_node, base, typ="at+jwt", kid=key.kid)


async def test_a_hybrid_access_token_without_its_family_is_refused() -> None:
    """T26 (hybrid): an access token carries the ``sid`` of its refresh family; one without
    it, or naming a family that does not exist or was revoked, is 401."""
    async with running("hybrid") as node:
        base = await node.live_claims()
        assert not await accepted(node, _drop(base, "sid"))
        other = await node.login("mallory")
        sid = other.token_claims()["sid"]
        assert (await other.post("/auth/logout")).status_code == 204
        assert not await accepted(node, {**base, "sid": sid})


# -- T27 -----------------------------------------------------------------------------------------
async def test_a_token_for_another_audience_is_refused_even_with_a_shared_key(
    tmp_path: Path,
) -> None:
    """T27: two deployments sharing one store and secret (the dangerous case: one key)
    with audiences service-a and service-b. A's token at B is 401; ``aud`` "", [], "A" in
    another case, with a trailing space, or missing is 401 at both; a list naming both
    audiences is accepted by both (RFC 7519 §4.1.3, our documented policy)."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    async with (
        running("stateless", url, audience="service-a") as a,
        running("stateless", url, audience="service-b", users=()) as b,
    ):
        assert a.signing_key().kid == b.signing_key().kid
        b.users = a.users
        token_for_a = (await a.login("alice")).auth
        assert await a.whoami_token(token_for_a) == a.users["alice"]
        assert await b.whoami_token(token_for_a) is None
        claims = a.claims("alice")
        for aud in ("", [], "Service-A", "service-a ", ["service-a "], ["Service-B"]):
            for node in (a, b):
                assert not await accepted(node, {**claims, "aud": aud}), aud
        for node in (a, b):
            assert not await accepted(node, _drop(claims, "aud"))
            assert await accepted(node, {**claims, "aud": ["service-a", "service-b"]})


# -- T28 -----------------------------------------------------------------------------------------
async def test_only_the_exact_issuer_string_is_accepted() -> None:
    """T28: issuer https://auth.example.test; every near miss (prefix, no scheme, trailing
    slash, upper case, a longer host, a list, absent) is 401 (PyJWT CVE-2024-53861)."""
    issuer = "https://auth.example.test"
    async with running("stateless", issuer=issuer) as node:
        claims = node.claims("alice")
        assert await accepted(node, claims)
        for iss in (
            "https://auth",
            "auth.example.test",
            "https://auth.example.test/",
            "HTTPS://AUTH.EXAMPLE.TEST",
            "https://auth.example.test.evil",
            [issuer],
            "",
            None,
        ):
            assert not await accepted(node, {**claims, "iss": iss}), iss
        assert not await accepted(node, _drop(claims, "iss"))


# -- T29 -----------------------------------------------------------------------------------------
async def test_a_refresh_token_is_not_an_access_token_and_vice_versa() -> None:
    """T29 (a, b): the hybrid refresh token in the auth cookie is 401; the access JWT in the
    refresh cookie gets 401 from /auth/refresh and nothing is issued."""
    async with running("hybrid") as node:
        session = await node.login("alice")
        refresh, access = session.refresh, session.auth
        assert refresh is not None
        assert await node.whoami(f"{AUTH_COOKIE}={refresh}") is None
        before = await node.snapshot()
        response = await node.raw(
            "POST",
            "/auth/refresh",
            cookie=f"{REFRESH_COOKIE}={access}",
            headers={"x-csrf-token": session.csrf},
        )
        assert response.status_code == 401
        assert "set-cookie" not in response.headers
        assert await node.snapshot() == before


async def test_a_csrf_token_or_another_modes_credential_is_not_an_access_token(
    tmp_path: Path,
) -> None:
    """T29 (c): the CSRF token in the auth cookie; a session-mode session ID at a hybrid
    node; a stateless token at a hybrid node sharing its keys (no family); tokens of one
    deployment at an unrelated one: all 401."""
    async with running("session") as session_node, running("hybrid") as hybrid_node:
        for node in (session_node, hybrid_node):
            session = await node.login("alice")
            assert await node.whoami(f"{AUTH_COOKIE}={session.csrf}") is None
            assert await node.whoami(f"{AUTH_COOKIE}={session.cookies[CSRF_COOKIE]}") is None
        session_id = (await session_node.login("alice")).auth
        assert await hybrid_node.whoami_token(session_id) is None
        hybrid_token = (await hybrid_node.login("alice")).auth
        assert await session_node.whoami_token(hybrid_token) is None
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    async with (
        running("stateless", url) as stateless,
        running("hybrid", url, users=()) as hybrid,
    ):
        token = (await stateless.login("alice")).auth
        assert await hybrid.whoami_token(token) is None


# -- T30 -----------------------------------------------------------------------------------------
async def test_a_disabled_user_loses_every_credential_at_once(node: Node) -> None:
    """T30: after ``AuthState.disable_user`` the session cookie, the access JWT and the
    refresh token are 401 on the spot (not at expiry), and logging in again gets the same
    401 as a wrong password. (The store has no user deletion; disabling is how a user is
    removed.)"""
    session = await node.login("alice")
    saved = dict(session.cookies)
    await node.auth.disable_user(node.users["alice"])
    assert await node.whoami(f"{AUTH_COOKIE}={saved[AUTH_COOKIE]}") is None
    if REFRESH_COOKIE in saved:
        response = await node.raw(
            "POST",
            "/auth/refresh",
            cookie=f"{REFRESH_COOKIE}={saved[REFRESH_COOKIE]}",
            headers={"x-csrf-token": session.csrf},
        )
        assert response.status_code == 401
        assert "set-cookie" not in response.headers
    async with node.client() as client:
        again = await client.post(
            "/auth/login", json={"username": "alice", "password": "correct horse battery staple"}
        )
        wrong = await client.post("/auth/login", json={"username": "alice", "password": "x" * 9})
    assert again.status_code == wrong.status_code == 401
    assert again.json() == wrong.json()


# -- T31 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"sub": "1 OR 1=1"}, 200),
        ({"sub": "../../admin"}, 200),
        ({"sub": "*"}, 200),
        ({"sub": "s" * 10_000}, 401),
        ({"sub": "alice"}, 200),
        ({"jti": "' OR '1'='1"}, 200),
        ({"sub": "\u0000"}, 200),
    ],
    ids=["sql", "path", "glob", "huge", "username-not-id", "jti-sql", "nul"],
)
async def test_claims_are_only_ever_exact_lookup_keys(
    jwt_node: Node, changes: dict[str, Any], status: int
) -> None:
    """T31: correctly signed tokens whose sub or jti is SQL, a path, a glob, 10 KB or
    another user's name: 401 (oversized) or a principal for exactly that string with no
    user behind it; never someone else's data, never a 5xx, nothing stored."""
    before = await jwt_node.snapshot()
    claims = await jwt_node.live_claims(**changes)
    after_login = await jwt_node.snapshot()
    response = await jwt_node.raw(
        "GET", "/auth/me", cookie=f"{AUTH_COOKIE}={jwt_node.mint(claims)}"
    )
    assert response.status_code == status, response.text
    if status == 200:
        body = response.json()
        owner = {user_id: name for name, user_id in jwt_node.users.items()}.get(claims["sub"])
        assert body["user"]["id"] == claims["sub"]
        assert body["user"]["username"] == owner
    assert await jwt_node.snapshot() == after_login
    assert before["users"] == after_login["users"]
