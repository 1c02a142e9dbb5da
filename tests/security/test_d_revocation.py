"""D. Logout, revocation, blocklist (T32-T37): logging out ends the credential on the
server, in every spelling, on every node, across restarts, and only by a real POST.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from authstate import FrozenClock
from authstate.cookies import AUTH_COOKIE, CSRF_COOKIE, REFRESH_COOKIE
from authstate.stores.base import ChangeKind
from tests.security.harness import ORIGIN, Node, running

pytestmark = pytest.mark.anyio

P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


async def refresh_with(node: Node, refresh: str, csrf: str) -> int:
    response = await node.raw(
        "POST",
        "/auth/refresh",
        cookie=f"{REFRESH_COOKIE}={refresh}",
        headers={"x-csrf-token": csrf, "origin": ORIGIN},
    )
    if response.status_code != 200:
        assert "set-cookie" not in response.headers
    return response.status_code


async def assert_dead(node: Node, saved: dict[str, str], csrf: str) -> None:
    """Every saved credential, replayed from a fresh client, is refused."""
    assert await node.whoami(f"{AUTH_COOKIE}={saved[AUTH_COOKIE]}") is None
    if REFRESH_COOKIE in saved:
        assert await refresh_with(node, saved[REFRESH_COOKIE], csrf) == 401


# -- T32 -----------------------------------------------------------------------------------------
async def test_logout_ends_every_credential_on_the_server(node: Node) -> None:
    """T32: after POST /auth/logout the saved auth cookie (session ID or JWT) and refresh
    token, replayed from another client, are 401; the response expires each cookie with
    its own name, Path and attributes, and sends Clear-Site-Data."""
    session = await node.login("alice")
    saved = dict(session.cookies)
    response = await session.post("/auth/logout")
    assert response.status_code == 204
    cleared = {h.split("=", 1)[0]: h for h in response.headers.get_list("set-cookie")}
    assert set(cleared) >= {AUTH_COOKIE, CSRF_COOKIE}
    assert cleared[AUTH_COOKIE].startswith(f"{AUTH_COOKIE}=;")
    for header in cleared.values():
        assert "Max-Age=0" in header and "Secure" in header
    assert "Path=/;" in cleared[AUTH_COOKIE] and "HttpOnly" in cleared[AUTH_COOKIE]
    if node.mode == "hybrid":
        assert "Path=/auth;" in cleared[REFRESH_COOKIE]
        assert "SameSite=Strict" in cleared[REFRESH_COOKIE]
    assert response.headers["clear-site-data"] == '"cookies"'
    await assert_dead(node, saved, session.csrf)


# -- T33 -----------------------------------------------------------------------------------------
def respellings(token: str) -> list[str]:
    h, p, s = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    spellings = [
        token,
        f"{h}=.{p}.{s}",
        f"{h}.{p}=.{s}",
        f"{h}.{p}.{s}=",
        f"{h}.{p}.{s}!!!!",
        f"{h}.{p}.{s}==",
    ]
    if len(s) % 4:
        spellings.append(f"{h}.{p}.{s[:-1]}{alphabet[alphabet.index(s[-1]) | 1]}")
    return spellings


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "HS256"])
@pytest.mark.parametrize("mode", ["stateless", "hybrid"])
async def test_a_revoked_token_stays_revoked_in_every_spelling(mode: str, alg: str) -> None:
    """T33: after logout the exact token, ``=`` after any segment, ``!!!!`` after the
    signature, non-canonical trailing bits and (ES256) the malleated signature (r, n-s)
    are all 401; the revocation is keyed by jti or family handle, never by token bytes."""
    async with running(mode, algorithm=alg) as node:
        session = await node.login("alice")
        token = session.auth
        claims = session.token_claims()
        assert (await session.post("/auth/logout")).status_code == 204
        variants = respellings(token)
        if alg == "ES256":
            h, p, s = token.split(".")
            raw = base64.urlsafe_b64decode(s + "==")
            high = (P256_N - int.from_bytes(raw[32:], "big")).to_bytes(32, "big")
            variants.append(f"{h}.{p}.{base64.urlsafe_b64encode(raw[:32] + high).decode()[:-2]}")
        for variant in variants:
            assert await node.whoami_token(variant) is None, variant
        changes, _ = await node.store.active_revocations(node.clock.now())
        values = {(c.kind, c.value) for c in changes}
        if mode == "stateless":
            assert (ChangeKind.JTI, claims["jti"]) in values
        else:
            assert (ChangeKind.SID, claims["sid"]) in values
        digest = hashlib.sha256(token.encode()).hexdigest()
        assert not any(token in value or digest in value for _, value in values)


# -- T34 -----------------------------------------------------------------------------------------
async def test_logout_everywhere_ends_every_other_client_at_once(node: Node) -> None:
    """T34: two clients of alice; A calls POST /auth/logout-all: B's auth cookie and refresh
    token (and A's) are 401 immediately, not at expiry. Mallory is untouched."""
    a = await node.login("alice")
    b = await node.login("alice")
    mallory = await node.login("mallory")
    saved_a, saved_b = dict(a.cookies), dict(b.cookies)
    assert (await a.post("/auth/logout-all")).status_code == 204
    await assert_dead(node, saved_b, b.csrf)
    await assert_dead(node, saved_a, a.csrf)
    assert (await mallory.me()).status_code == 200


# -- T35 -----------------------------------------------------------------------------------------
async def test_a_password_change_rotates_this_client_and_ends_the_others(node: Node) -> None:
    """T35: A changes the password: A's old auth cookie is 401 and its old CSRF token 403,
    A carries on with new ones; B's credentials and refresh family are dead."""
    a = await node.login("alice")
    b = await node.login("alice")
    old_a, old_csrf = dict(a.cookies), a.csrf
    saved_b = dict(b.cookies)
    changed = await a.post(
        "/auth/password",
        json={"current_password": "correct horse battery staple", "new_password": "n3w passw0rd"},
    )
    assert changed.status_code == 204
    assert a.cookies[AUTH_COOKIE] != old_a[AUTH_COOKIE] and a.csrf != old_csrf
    assert (await a.me()).status_code == 200
    await assert_dead(node, old_a, old_csrf)
    await assert_dead(node, saved_b, b.csrf)
    stale_csrf = await a.client.post("/auth/logout", headers={"x-csrf-token": old_csrf})
    assert stale_csrf.status_code == 403
    assert (await a.me()).status_code == 200


# -- T36 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["stateless", "hybrid", "session"])
async def test_a_revocation_survives_a_restart_and_outlives_nothing(
    tmp_path: Path, mode: str
) -> None:
    """T36 (SQLite): a logged-out credential stays refused after the server restarts on the
    same store; past exp + leeway its entry may be purged and it still fails (expired)."""
    url = f"sqlite:///{tmp_path / 'auth.db'}"
    clock = FrozenClock()
    async with running(mode, url, clock=clock) as node:
        session = await node.login("alice")
        saved = dict(session.cookies)
        assert (await session.post("/auth/logout")).status_code == 204
        still = await node.login("mallory")
        kept = dict(still.cookies)
    async with running(mode, url, clock=clock, users=()) as node:
        assert await node.whoami(f"{AUTH_COOKIE}={saved[AUTH_COOKIE]}") is None
        assert await node.whoami(f"{AUTH_COOKIE}={kept[AUTH_COOKIE]}") is not None
        clock.advance(node.auth.settings.access_ttl_seconds + 31)
        await node.store.purge_expired(clock.now())
        node.auth.context.revocation.prune()
        assert await node.whoami(f"{AUTH_COOKIE}={saved[AUTH_COOKIE]}") is None


async def test_the_memory_store_forgets_everything_on_restart_tokens_included() -> None:
    """T36 (memory, the documented limitation): a restart loses revocations, sessions and
    the keys themselves, so no credential of the old process works, revoked or not."""
    clock = FrozenClock()
    for mode in ("stateless", "session", "hybrid"):
        async with running(mode, clock=clock) as node:
            kept = (await node.login("alice")).auth
        async with running(mode, clock=clock) as node:
            assert await node.whoami_token(kept) is None


# -- T37 -----------------------------------------------------------------------------------------
async def test_logout_cannot_be_forced_by_get_or_cross_site(node: Node) -> None:
    """T37: GET /auth/logout is 405; POST without the CSRF token, with Sec-Fetch-Site:
    cross-site or with a foreign Origin (even carrying the token) is 403; the session is
    still valid after all of them."""
    session = await node.login("alice")
    get = await session.client.get("/auth/logout")
    assert get.status_code == 405
    attempts = [
        {},
        {"x-csrf-token": session.csrf, "sec-fetch-site": "cross-site"},
        {"x-csrf-token": session.csrf, "origin": "https://evil.test"},
        {"x-csrf-token": session.csrf, "origin": "null"},
    ]
    for headers in attempts:
        for path in ("/auth/logout", "/auth/logout-all"):
            response = await session.client.post(path, headers=headers)
            assert response.status_code == 403, (path, headers)
            assert response.json()["error"] == "csrf_failed"
    assert (await session.me()).status_code == 200
