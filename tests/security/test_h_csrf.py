"""H. CSRF (T58-T65): every state-changing request made with the auth cookie needs a token
bound to that very session, from a header or form field, and is refused cross-site.

Each case runs against every unsafe route of each mode (logout, logout everywhere,
password change, revoking a session, refresh) and checks that nothing changed.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from authstate.cookies import AUTH_COOKIE, CSRF_COOKIE, REFRESH_COOKIE
from tests.security.harness import ORIGIN, PASSWORD, Node, Session, set_cookies

pytestmark = pytest.mark.anyio

NEW_PASSWORD = "a different passw0rd"


async def targets(node: Node, session: Session) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, request kwargs) of every unsafe route ``session`` may call."""
    routes: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/auth/logout", {}),
        ("POST", "/auth/logout-all", {}),
        (
            "POST",
            "/auth/password",
            {"json": {"current_password": PASSWORD, "new_password": NEW_PASSWORD}},
        ),
    ]
    if node.mode != "stateless":
        other = await node.login(node_user(node, session))
        listing = await other.client.get("/auth/sessions")
        handle = next(s["id"] for s in listing.json()["sessions"] if s["current"])
        routes.append(("DELETE", f"/auth/sessions/{handle}", {}))
    if node.mode == "hybrid":
        routes.append(("POST", "/auth/refresh", {}))
    # Step-up and device control (S02): as CSRF-checked as every other unsafe route.
    routes.append(("POST", "/auth/reauth", {"json": {"password": PASSWORD}}))
    routes.append(("POST", "/auth/sessions/revoke-others", {}))
    return routes


def node_user(node: Node, session: Session) -> str:
    return next(name for name, user_id in node.users.items() if user_id == session.user_id)


async def send(
    session: Session,
    method: str,
    path: str,
    kwargs: dict[str, Any],
    *,
    headers: dict[str, str] | None = None,
    cookie: str | None = None,
) -> httpx.Response:
    """The request with exactly ``headers`` (no CSRF token unless given there)."""
    sent = dict(headers or {})
    if cookie is None:
        cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
    sent["cookie"] = cookie
    async with session.node.client() as client:
        return await client.request(method, path, headers=sent, **kwargs)


async def assert_refused_without_change(
    node: Node, session: Session, *, headers: dict[str, str], cookie: str | None = None
) -> None:
    before = await node.snapshot()
    for method, path, kwargs in await targets(node, session):
        before = await node.snapshot()
        response = await send(session, method, path, kwargs, headers=headers, cookie=cookie)
        assert response.status_code == 403, (path, headers, response.text)
        assert response.json()["error"] == "csrf_failed"
        assert response.headers["cache-control"] == "no-store"
        assert not set(set_cookies(response)) & {AUTH_COOKIE, REFRESH_COOKIE}
        assert await node.snapshot() == before, path
    assert (await session.me()).status_code == 200


# -- T58 -----------------------------------------------------------------------------------------
async def test_an_unsafe_request_without_the_token_changes_nothing(node: Node) -> None:
    """T58: no X-CSRF-Token and no csrf_token field: 403 on every unsafe route, and the
    store (sessions, revocations, password hash) is unchanged."""
    session = await node.login("alice")
    await assert_refused_without_change(node, session, headers={})


# -- T59 -----------------------------------------------------------------------------------------
async def test_a_token_from_another_session_is_refused(node: Node) -> None:
    """T59: mallory's own valid token with alice's cookie, and alice's token from her
    previous session (before she logged in again): 403 everywhere."""
    alice = await node.login("alice")
    mallory = await node.login("mallory")
    await assert_refused_without_change(node, alice, headers={"x-csrf-token": mallory.csrf})
    old_csrf = alice.csrf
    again = await node.login("alice")
    await assert_refused_without_change(node, again, headers={"x-csrf-token": old_csrf})


# -- T60 -----------------------------------------------------------------------------------------
async def test_naive_double_submit_values_are_refused(node: Node) -> None:
    """T60: the attacker plants a CSRF cookie V (a sibling subdomain can) and sends the same
    V in the header: V empty, an unsigned random value of the right shape, or a token
    signed for another session: 403 (the token is signed and bound, the cookie unread)."""
    alice = await node.login("alice")
    mallory = await node.login("mallory")
    shaped = "A" * 22 + "." + "B" * 43
    flipped = alice.csrf[:-1] + ("E" if alice.csrf[-1] != "E" else "I")
    for value in ("", shaped, mallory.csrf, flipped):
        cookie = f"{AUTH_COOKIE}={alice.auth}; {CSRF_COOKIE}={value}"
        if alice.refresh:
            cookie += f"; {REFRESH_COOKIE}={alice.refresh}"
        await assert_refused_without_change(
            node, alice, headers={"x-csrf-token": value}, cookie=cookie
        )


# -- T61 -----------------------------------------------------------------------------------------
async def test_a_token_in_the_wrong_place_does_not_count(node: Node) -> None:
    """T61: the valid token only in the cookie (always sent by the browser), or in the
    query string: 403. GET requests never change state, token or not."""
    session = await node.login("alice")
    for method, path, kwargs in await targets(node, session):
        before = await node.snapshot()
        only_cookie = await send(session, method, path, kwargs)
        in_query = await send(
            session, method, f"{path}?csrf_token={session.csrf}&x-csrf-token={session.csrf}", kwargs
        )
        for response in (only_cookie, in_query):
            assert response.status_code == 403, path
        assert await node.snapshot() == before
    before = await node.snapshot()
    for path in ("/auth/logout", "/auth/logout-all", "/auth/password", "/auth/refresh"):
        response = await session.client.get(path, params={"csrf_token": session.csrf})
        assert response.status_code == 405, (path, response.status_code)
    assert await node.snapshot() == before


# -- T62 -----------------------------------------------------------------------------------------
async def test_fetch_metadata_refuses_cross_site_and_same_site_requests(node: Node) -> None:
    """T62: with a valid token, Sec-Fetch-Site: cross-site is 403, same-site (a sibling
    host, not configured as an allowed origin) is 403; same-origin and none pass to the
    token check (none is a user-initiated navigation, it cannot carry our header), and so
    does a request without Fetch Metadata (non-browser clients)."""
    session = await node.login("alice")
    for site in ("cross-site", "same-site", "Cross-Site", " cross-site "):
        await assert_refused_without_change(
            node, session, headers={"x-csrf-token": session.csrf, "sec-fetch-site": site}
        )
    sites: tuple[str | None, ...] = ("same-origin", "none", None)
    for fetch_site in sites:
        headers = {"x-csrf-token": session.csrf}
        if fetch_site is not None:
            headers["sec-fetch-site"] = fetch_site
        response = await session.client.post("/auth/logout-all", headers=headers)
        assert response.status_code == 204, fetch_site
        session = await node.login("alice")


# -- T63 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.test",
        "https://testserver.evil.test",
        "https://evil.test/testserver",
        "https://evil-testserver",
        "null",
        "http://testserver",
        "https://testserver:8443",
        "https://TESTSERVER.evil",
        "https://testserver@evil.test",
        "",
    ],
)
async def test_a_foreign_or_unusable_origin_is_refused(node: Node, origin: str) -> None:
    """T63: with a valid token, an Origin that is not exactly ours (another host, a
    look-alike, a path trick, null, a scheme downgrade, another port, user info, empty):
    403 and no change."""
    session = await node.login("alice")
    await assert_refused_without_change(
        node, session, headers={"x-csrf-token": session.csrf, "origin": origin}
    )


async def test_without_origin_the_token_decides_and_referer_is_not_consulted(node: Node) -> None:
    """T63 (docs/http.md "CSRF", decision 4 of the research): with neither Origin nor Fetch Metadata
    (a non-browser client) the token alone decides. A foreign Referer without Origin gets
    nothing either way: no token is 403, the right token passes. Our own Origin passes."""
    session = await node.login("alice")
    await assert_refused_without_change(
        node, session, headers={"referer": "https://evil.test/page"}
    )
    for extra in (
        {"referer": "https://evil.test/page"},
        {},
        {"origin": ORIGIN, "sec-fetch-site": "same-origin"},
    ):
        headers = {"x-csrf-token": session.csrf, **extra}
        response = await session.client.post("/auth/logout-all", headers=headers)
        assert response.status_code == 204, headers
        session = await node.login("alice")


# -- T64 -----------------------------------------------------------------------------------------
async def test_simple_requests_and_method_tricks_change_nothing(node: Node) -> None:
    """T64: the password change as a cross-site "simple request" (text/plain JSON, no
    header token) is 403; with the token but text/plain or no Content-Type it is 400 (JSON
    endpoints need a declared type); method-override headers and ``_method`` on a GET are
    ignored (405); every GET, HEAD and OPTIONS leaves the store as it was."""
    session = await node.login("alice")
    body = f'{{"current_password":"{PASSWORD}","new_password":"{NEW_PASSWORD}"}}'
    before = await node.snapshot()
    simple = await session.client.post(
        "/auth/password", content=body, headers={"content-type": "text/plain"}
    )
    assert simple.status_code == 403
    for content_type in ("text/plain", "multipart/form-data; boundary=x", None):
        headers = {"x-csrf-token": session.csrf}
        if content_type:
            headers["content-type"] = content_type
        declared = await session.client.post("/auth/password", content=body, headers=headers)
        assert declared.status_code == 400, content_type
    for path in ("/auth/logout", "/auth/logout-all", "/auth/password"):
        for override in ({"x-http-method-override": "POST"}, {"x-method-override": "POST"}):
            response = await session.client.get(path, headers={**override, **session.headers})
            assert response.status_code == 405
        response = await session.client.get(path, params={"_method": "POST"})
        assert response.status_code == 405
    paths = ["/", "/auth/me", "/auth/sessions", "/auth/csrf", "/healthz", "/.well-known/jwks.json"]
    paths += ["/auth/logout", "/auth/logout-all", "/auth/refresh", "/auth/password"]
    for path in paths:
        for method in ("GET", "HEAD", "OPTIONS"):
            response = await session.client.request(method, path, headers=session.headers)
            assert response.status_code < 500
    assert await node.snapshot() == before
    assert (await session.me()).status_code == 200


# -- T65 -----------------------------------------------------------------------------------------
async def test_login_csrf_is_refused_and_login_retires_the_anonymous_token(node: Node) -> None:
    """T65: a cross-site login with the attacker's credentials (Sec-Fetch-Site: cross-site,
    a foreign Origin, Origin null, same-site) is 403 and sets no cookie; after a real login
    the token handed out before it is 403 and a new one came with the login."""
    before = await node.snapshot()
    async with node.client() as client:
        for headers in (
            {"sec-fetch-site": "cross-site"},
            {"origin": "https://evil.test"},
            {"origin": "null"},
            {"sec-fetch-site": "same-site"},
            {"origin": "https://evil.test", "sec-fetch-site": "same-origin"},
        ):
            for form in (False, True):
                fields = {"username": "mallory", "password": PASSWORD}
                response = await (
                    client.post("/auth/login", headers=headers, data=fields)
                    if form
                    else client.post("/auth/login", headers=headers, json=fields)
                )
                assert response.status_code == 403, headers
                assert "set-cookie" not in response.headers
    assert await node.snapshot() == before
    async with node.client() as client:
        anonymous = (await client.get("/auth/csrf")).json()["csrf_token"]
        login = await client.post(
            "/auth/login",
            json={"username": "alice", "password": PASSWORD},
            headers={"origin": ORIGIN, "sec-fetch-site": "same-origin"},
        )
        assert login.status_code == 200
        fresh = login.json()["csrf_token"]
        assert fresh != anonymous
        stale = await client.post("/auth/logout", headers={"x-csrf-token": anonymous})
        assert stale.status_code == 403
        assert (
            await client.post("/auth/logout", headers={"x-csrf-token": fresh})
        ).status_code == 204
