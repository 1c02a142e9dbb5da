"""S. Step-up, remember-me and device control (S01-S07): a cookie cannot make itself
fresh, reauth is a login in every respect (CSRF, throttle, answers), signing out other
devices needs a fresh password check, and remember-me only changes what the browser keeps.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from authstate.cookies import AUTH_COOKIE, CSRF_COOKIE, REFRESH_COOKIE
from authstate.crypto.ids import b64url_encode
from authstate.crypto.keys import generate_key
from tests.security.harness import PASSWORD, Node, Session, decode_segment, running

pytestmark = pytest.mark.anyio

FRESH_WINDOW = 300  # AUTHSTATE_FRESH_WINDOW's default, in seconds
REAUTH_REQUIRED = {"error": "reauth_required", "detail": "confirm your password to continue"}


async def go_stale(node: Node) -> None:
    """Let the last password check age past the fresh window (tokens stay valid)."""
    node.clock.advance(FRESH_WINDOW + 5)


def cookie_of(token: str) -> str:
    return f"{AUTH_COOKIE}={token}"


async def revoke_others_with(node: Node, token: str, csrf_binding: str) -> int:
    """``POST /auth/sessions/revoke-others`` with exactly this auth cookie and its CSRF token."""
    csrf = node.auth.csrf_token(csrf_binding)
    response = await node.raw(
        "POST",
        "/auth/sessions/revoke-others",
        cookie=f"{cookie_of(token)}; {CSRF_COOKIE}={csrf}",
        headers={"x-csrf-token": csrf},
    )
    return response.status_code


# -- S01 -----------------------------------------------------------------------------------------
async def test_a_token_cannot_make_itself_fresh(jwt_node: Node) -> None:
    """S01: ``auth_time`` counts only as signed by the node. A token without it (minted
    before step-up), or with one of the wrong JSON type, is never fresh; rewriting it in a
    real token breaks the signature (401); a foreign key's token is refused outright."""
    node = jwt_node
    base = await node.live_claims("alice")
    now = int(node.clock.now())
    binding = base.get("sid") if node.mode == "hybrid" else None
    for auth_time in (..., str(now), float(now), True, [now], None):
        claims = {**base, "auth_time": auth_time}
        claims = {k: v for k, v in claims.items() if v is not ...}
        token = node.mint(claims)
        assert await node.whoami_token(token) == node.users["alice"]  # valid, but not fresh
        me = await node.raw("GET", "/auth/me", cookie=cookie_of(token))
        assert me.json()["auth_time"] is None
        status = await revoke_others_with(node, token, binding or claims["jti"])
        assert status == 401, auth_time
    # alice's real, stale token with auth_time rewritten to now: the signature no longer holds.
    alice = await node.login("alice")
    await go_stale(node)
    header, payload, signature = alice.auth.split(".")
    claims = {**decode_segment(payload), "auth_time": int(node.clock.now())}
    forged = ".".join((header, b64url_encode(_json(claims)), signature))
    assert await node.whoami_token(forged) is None
    # Signed by a key the node does not hold: refused however fresh it claims to be.
    own = node.signing_key()
    stranger = replace(generate_key(own.alg, now=node.clock.now()), kid=own.kid)
    foreign = node.mint({**base, "auth_time": int(node.clock.now())}, key=stranger)
    assert await node.whoami_token(foreign) is None


def _json(claims: dict[str, object]) -> bytes:
    return json.dumps(claims, separators=(",", ":")).encode()


# -- S02 -----------------------------------------------------------------------------------------
async def test_reauth_without_the_csrf_token_changes_nothing(node: Node) -> None:
    """S02: ``POST /auth/reauth`` with the right password but no CSRF token is 403; the
    credential is not rotated and stays valid (test_h_csrf attacks it with T58-T65 too)."""
    alice = await node.login("alice")
    before = await node.snapshot()
    cookie = "; ".join(f"{k}={v}" for k, v in alice.cookies.items())
    response = await node.raw("POST", "/auth/reauth", cookie=cookie, json={"password": PASSWORD})
    assert response.status_code == 403 and response.json()["error"] == "csrf_failed"
    assert AUTH_COOKIE not in {h.split("=", 1)[0] for h in response.headers.get_list("set-cookie")}
    assert await node.snapshot() == before
    assert await node.whoami(cookie) == node.users["alice"]


# -- S03 -----------------------------------------------------------------------------------------
async def test_reauth_is_a_login_for_the_throttle_and_answers_alike() -> None:
    """S03: a wrong reauth password is the login's 401 (same body), spends the login's
    buckets (username and IP), so three wrong reauths lock the login too and a fourth
    reauth, even right, is 429; a refused reauth rotates nothing."""
    async with running("session", login_max_attempts=3) as node:
        alice = await node.login("alice")
        before = await node.snapshot()
        async with node.client() as stranger:
            login_failure = await stranger.post(
                "/auth/login", json={"username": "alice", "password": "wrong password 0"}
            )
        for attempt in range(2):
            wrong = await alice.post("/auth/reauth", json={"password": f"wrong password {attempt}"})
            assert wrong.status_code == 401
            assert (
                wrong.json()
                == login_failure.json()
                == {
                    "error": "invalid_credentials",
                    "detail": "invalid username or password",
                }
            )
        assert (await node.snapshot())["sessions"] == before["sessions"]
        throttled = await alice.post("/auth/reauth", json={"password": PASSWORD})
        assert throttled.status_code == 429 and "retry-after" in throttled.headers
        async with node.client() as fresh_browser:
            login = await fresh_browser.post(
                "/auth/login", json={"username": "alice", "password": PASSWORD}
            )
        assert login.status_code == 429
        assert (await alice.me()).status_code == 200  # refused reauths end nothing


# -- S04 -----------------------------------------------------------------------------------------
async def test_signing_out_other_devices_needs_a_fresh_password_check(node: Node) -> None:
    """S04: a stolen cookie whose password check is older than the fresh window cannot
    sign its owner out elsewhere (revoke-others, or DELETE of another session): 401
    ``reauth_required``, nothing revoked. After a reauth it can."""
    thief = await node.login("alice")
    owner = await node.login("alice")
    await go_stale(node)
    before = await node.snapshot()
    refused = await thief.post("/auth/sessions/revoke-others")
    assert refused.status_code == 401 and refused.json() == REAUTH_REQUIRED
    if node.mode != "stateless":
        owner_handle = (await owner.me()).json()["session"]["id"]
        delete = await thief.client.delete(f"/auth/sessions/{owner_handle}", headers=thief.headers)
        assert delete.status_code == 401 and delete.json() == REAUTH_REQUIRED
    assert await node.snapshot() == before
    assert (await owner.me()).status_code == 200
    # logout-all needs no step-up: it signs the caller out as well.
    reauth = await thief.post("/auth/reauth", json={"password": PASSWORD})
    assert reauth.status_code == 200
    assert (await thief.post("/auth/sessions/revoke-others")).status_code == 204
    assert (await owner.me()).status_code == 401
    assert (await thief.me()).status_code == 200


# -- S05 -----------------------------------------------------------------------------------------
async def test_a_credential_from_before_the_reauth_dies_with_it(node: Node) -> None:
    """S05 (fixation): reauth replaces the credential; a copy taken before it (the old
    session ID, access token or refresh token) is refused, and never becomes fresh."""
    alice = await node.login("alice")
    old = dict(alice.cookies)
    await go_stale(node)
    response = await alice.post("/auth/reauth", json={"password": PASSWORD})
    assert response.status_code == 200
    assert alice.auth != old[AUTH_COOKIE]
    assert await node.whoami_token(old[AUTH_COOKIE]) is None
    assert await node.whoami_token(alice.auth) == node.users["alice"]
    if node.mode == "hybrid":
        stale_refresh = await node.raw(
            "POST",
            "/auth/refresh",
            cookie=f"{REFRESH_COOKIE}={old[REFRESH_COOKIE]}",
            headers={"x-csrf-token": alice.csrf},
        )
        assert stale_refresh.status_code in (401, 403)
        assert REFRESH_COOKIE + "=" not in stale_refresh.headers.get("set-cookie", "")


# -- S06 -----------------------------------------------------------------------------------------
async def test_remember_me_cannot_extend_the_server_side_lifetime(node: Node) -> None:
    """S06: ``"remember"`` only chooses the cookie kind. Both choices get the same
    server-side expiry, a non-boolean is 400 with no login, and once the server-side
    lifetime is over a remembered login is as dead as a forgotten one."""
    remembered = await _login(node, True)
    forgotten = await _login(node, False)
    me_r, me_f = (await remembered.me()).json(), (await forgotten.me()).json()
    if me_r["token"] is not None:
        assert me_r["token"]["exp"] == me_f["token"]["exp"]
    if node.mode != "stateless":
        assert me_r["session"]["expires_at"] == me_f["session"]["expires_at"]
    before = await node.snapshot()
    async with node.client() as client:
        for value in ("yes", 1, "forever", None, {"days": 365}):
            response = await client.post(
                "/auth/login",
                json={"username": "alice", "password": PASSWORD, "remember": value},
            )
            if value is None:  # null is "not given": the default
                assert response.status_code == 200
                continue
            assert response.status_code == 400, value
    after = await node.snapshot()
    grown = sum(len(v) for v in after["sessions"].values()) - sum(
        len(v) for v in before["sessions"].values()
    )
    assert grown <= 1  # only the null (default) login
    settings = node.auth.settings
    lifetime = {
        "stateless": settings.access_ttl_seconds,
        "session": settings.session_ttl_seconds,
        "hybrid": settings.refresh_ttl_seconds,
    }[node.mode]
    node.clock.advance(lifetime + settings.leeway_seconds + 1)
    assert (await remembered.me()).status_code == 401
    if node.mode == "hybrid":
        assert (await remembered.refresh_now()).status_code == 401


async def _login(node: Node, remember: bool) -> Session:
    client = node.client()
    response = await client.post(
        "/auth/login", json={"username": "alice", "password": PASSWORD, "remember": remember}
    )
    assert response.status_code == 200
    session = Session(node, client, response.json()["user"]["id"], response.json()["csrf_token"])
    session.take(response)
    session.csrf = response.json()["csrf_token"]
    return session


# -- S07 -----------------------------------------------------------------------------------------
async def test_the_session_cap_counts_per_user_only() -> None:
    """S07: with ``AUTHSTATE_MAX_SESSIONS_PER_USER`` a user's logins evict only that
    user's oldest sessions: mallory logging in again and again never signs alice out."""
    for mode in ("session", "hybrid"):
        async with running(mode, max_sessions_per_user=2) as node:
            alice = await node.login("alice")
            for _ in range(4):
                await node.login("mallory")
            assert (await alice.me()).status_code == 200
            sessions = (await node.snapshot())["sessions"]
            assert len(sessions[node.users["mallory"]]) == 2
