"""Every row of the endpoint table of docs/http.md, in every mode, on memory:// and SQLite."""

from __future__ import annotations

import pytest

from authstate.cookies import AUTH_COOKIE, CSRF_COOKIE, REFRESH_COOKIE
from tests.server.conftest import PASSWORD, Deployment, set_cookie_headers

pytestmark = pytest.mark.anyio


# -- POST /auth/login ----------------------------------------------------------------------
async def test_login_answers_the_user_the_mode_a_csrf_token_and_sets_secure_cookies(
    deployment: Deployment,
) -> None:
    async with deployment.client() as client:
        response = await client.post(
            "/auth/login", json={"username": "alice", "password": PASSWORD}
        )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"user", "mode", "csrf_token", "expires_at"}
    assert body["user"]["username"] == "alice"
    assert body["user"]["roles"] == ["staff"]
    assert body["mode"] == deployment.mode
    assert isinstance(body["expires_at"], int)
    assert response.headers["cache-control"] == "no-store"
    cookies = set_cookie_headers(response)
    auth = cookies[AUTH_COOKIE]
    for attribute in ("Path=/;", "Secure", "HttpOnly", "SameSite=Lax"):
        assert attribute in auth
    assert "HttpOnly" not in cookies[CSRF_COOKIE]
    assert "Domain" not in auth
    if deployment.mode == "hybrid":
        refresh = cookies[REFRESH_COOKIE]
        for attribute in ("Path=/auth;", "Secure", "HttpOnly", "SameSite=Strict"):
            assert attribute in refresh
    else:
        assert REFRESH_COOKIE not in cookies


async def test_a_form_login_is_redirected_to_the_dashboard_with_the_cookies(
    deployment: Deployment,
) -> None:
    async with deployment.client() as client:
        response = await client.post(
            "/auth/login", data={"username": "alice", "password": PASSWORD}
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/"
        assert AUTH_COOKIE in set_cookie_headers(response)
        me = await client.get("/auth/me")
    assert me.status_code == 200


async def test_unknown_user_and_wrong_password_get_the_same_401(deployment: Deployment) -> None:
    async with deployment.client() as client:
        wrong = await client.post(
            "/auth/login", json={"username": "alice", "password": "nope-nope"}
        )
        unknown = await client.post(
            "/auth/login", json={"username": "mallory", "password": "nope-nope"}
        )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"] == "invalid_credentials"
    assert "set-cookie" not in wrong.headers


async def test_login_is_throttled_with_429_and_retry_after(tmp_path: object) -> None:
    from tests.server.conftest import deploy

    async for dep in deploy("memory://", mode="session", login_max_attempts=3):
        await dep.add_user()
        async with dep.client() as client:
            for _ in range(3):
                failed = await client.post(
                    "/auth/login", json={"username": "alice", "password": "wrong-one"}
                )
                assert failed.status_code == 401
            # Even the right password is refused while throttled.
            response = await client.post(
                "/auth/login", json={"username": "alice", "password": PASSWORD}
            )
        assert response.status_code == 429
        assert response.json()["error"] == "too_many_attempts"
        assert int(response.headers["retry-after"]) > 0
        assert "set-cookie" not in response.headers


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'"alice"',
        b'{"username": "alice"}',
        b'{"username": 5, "password": "x"}',
        b'{"username": "alice", "password": null}',
        b'{"username": "alice", "password": ["a"]}',
        b'{"username": "alice", "username": "bob", "password": "x"}',
        b'{"username": "alice", "password": NaN}',
        b"\xff\xfe",
    ],
)
async def test_malformed_login_bodies_get_400_and_no_cookie(
    memory_deployment: Deployment, body: bytes
) -> None:
    async with memory_deployment.client() as client:
        response = await client.post(
            "/auth/login", content=body, headers={"content-type": "application/json"}
        )
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"
    assert "set-cookie" not in response.headers


async def test_a_megabyte_password_gets_413_before_any_work(memory_deployment: Deployment) -> None:
    async with memory_deployment.client() as client:
        huge = await client.post(
            "/auth/login", json={"username": "alice", "password": "x" * 1_000_000}
        )
        huge_form = await client.post(
            "/auth/login", data={"username": "alice", "password": "x" * 1_000_000}
        )
    assert huge.status_code == 413
    assert huge.json()["error"] == "payload_too_large"
    assert huge_form.status_code == 413
    # Nothing was counted against alice: she can still log in.
    await memory_deployment.logged_in()


async def test_a_login_from_another_origin_is_refused(memory_deployment: Deployment) -> None:
    async with memory_deployment.client() as client:
        response = await client.post(
            "/auth/login",
            json={"username": "alice", "password": PASSWORD},
            headers={"origin": "https://evil.example"},
        )
        cross_site = await client.post(
            "/auth/login",
            json={"username": "alice", "password": PASSWORD},
            headers={"sec-fetch-site": "cross-site"},
        )
    assert response.status_code == cross_site.status_code == 403
    assert response.json()["error"] == "csrf_failed"
    assert "set-cookie" not in response.headers


# -- GET /auth/me --------------------------------------------------------------------------
async def test_me_describes_the_user_and_what_the_cookie_holds(deployment: Deployment) -> None:
    user = await deployment.logged_in()
    async with user:
        response = await user.me()
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["username"] == "alice"
    assert body["mode"] == deployment.mode
    if deployment.mode == "stateless":
        assert body["session"] is None
    else:
        assert set(body["session"]) == {"id", "expires_at"}
    if deployment.mode == "session":
        assert body["token"] is None
    else:
        assert set(body["token"]) == {"iat", "exp"}
        assert body["token"]["exp"] > body["token"]["iat"]


async def test_me_without_a_cookie_or_with_garbage_is_401(deployment: Deployment) -> None:
    async with deployment.client() as client:
        anonymous = await client.get("/auth/me")
        garbage = await client.get("/auth/me", headers={"cookie": f"{AUTH_COOKIE}=a.b.c"})
    assert anonymous.status_code == garbage.status_code == 401
    assert anonymous.json() == {"error": "unauthenticated", "detail": "authentication required"}


# -- POST /auth/refresh --------------------------------------------------------------------
async def test_refresh_rotates_both_cookies_in_hybrid_mode(deployment: Deployment) -> None:
    user = await deployment.logged_in()
    async with user:
        old_access = user.auth_cookie
        old_refresh = user.client.cookies.get(REFRESH_COOKIE)
        response = await user.post("/auth/refresh")
        if deployment.mode != "hybrid":
            assert response.status_code == 404
            assert response.json()["error"] == "not_found"
            return
        assert response.status_code == 200
        assert set(response.json()) == {"user", "mode", "csrf_token", "expires_at"}
        cookies = set_cookie_headers(response)
        assert AUTH_COOKIE in cookies and REFRESH_COOKIE in cookies
        assert user.client.cookies.get(REFRESH_COOKIE) != old_refresh
        assert user.auth_cookie != old_access
        user.csrf = response.json()["csrf_token"]
        assert (await user.me()).status_code == 200


async def test_a_reused_refresh_token_is_401_and_revokes_the_family(tmp_path: object) -> None:
    from tests.server.conftest import deploy

    # No grace window: the second use of a rotated token is reuse at once.
    async for dep in deploy("memory://", mode="hybrid", refresh_grace="0s"):
        await dep.add_user()
        user = await dep.logged_in()
        async with user:
            stolen = user.client.cookies.get(REFRESH_COOKIE)
            rotated = await user.post("/auth/refresh")
            assert rotated.status_code == 200
            user.csrf = rotated.json()["csrf_token"]
            async with dep.client() as thief:
                thief.cookies.set(REFRESH_COOKIE, stolen or "", path="/auth")
                reuse = await thief.post("/auth/refresh")
            assert reuse.status_code == 401
            assert reuse.json()["error"] == "invalid_refresh"
            # The whole family died: the legitimate user's access token and refresh too.
            assert (await user.me()).status_code == 401
            again = await user.client.post("/auth/refresh")
            assert again.status_code == 401


async def test_refresh_without_a_refresh_cookie_is_401_in_hybrid(deployment: Deployment) -> None:
    async with deployment.client() as client:
        response = await client.post("/auth/refresh")
    expected = 401 if deployment.mode == "hybrid" else 404
    assert response.status_code == expected


# -- POST /auth/logout ---------------------------------------------------------------------
async def test_logout_clears_the_cookies_and_revokes_them_on_the_server(
    deployment: Deployment,
) -> None:
    user = await deployment.logged_in()
    async with user:
        old_cookie = user.auth_cookie
        response = await user.post("/auth/logout")
        assert response.status_code == 204
        assert response.headers["clear-site-data"] == '"cookies"'
        assert response.headers["cache-control"] == "no-store"
        cleared = set_cookie_headers(response)
        names = {AUTH_COOKIE, CSRF_COOKIE} | (
            {REFRESH_COOKIE} if deployment.mode == "hybrid" else set()
        )
        for name in names:
            assert "Max-Age=0" in cleared[name]
    # The old cookie, replayed by someone who copied it, is dead on the server.
    async with deployment.client() as replay:
        replay.cookies.set(AUTH_COOKIE, old_cookie)
        assert (await replay.get("/auth/me")).status_code == 401


async def test_logout_when_not_logged_in_is_401(deployment: Deployment) -> None:
    async with deployment.client() as client:
        response = await client.post("/auth/logout")
    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"


# -- POST /auth/logout-all -----------------------------------------------------------------
async def test_logout_all_kills_every_session_of_the_user(deployment: Deployment) -> None:
    laptop = await deployment.logged_in()
    phone = await deployment.logged_in()
    await deployment.add_user("bob")
    bob = await deployment.logged_in("bob")
    async with laptop, phone, bob:
        laptop_cookie = laptop.auth_cookie
        response = await laptop.post("/auth/logout-all")
        assert response.status_code == 204
        assert response.headers["clear-site-data"] == '"cookies"'
        assert (await phone.me()).status_code == 401
        assert (await bob.me()).status_code == 200
        async with deployment.client() as replay:
            replay.cookies.set(AUTH_COOKIE, laptop_cookie)
            assert (await replay.get("/auth/me")).status_code == 401
        if deployment.mode == "hybrid":
            # The refresh family is gone as well: no way back in with the phone's refresh.
            assert (await phone.client.post("/auth/refresh")).status_code == 401


async def test_logout_all_when_not_logged_in_is_401(deployment: Deployment) -> None:
    async with deployment.client() as client:
        assert (await client.post("/auth/logout-all")).status_code == 401


# -- GET /auth/sessions, DELETE /auth/sessions/{id} ----------------------------------------
async def test_sessions_lists_each_login_and_marks_the_current_one(
    deployment: Deployment,
) -> None:
    first = await deployment.logged_in()
    second = await deployment.logged_in()
    async with first, second:
        response = await first.client.get("/auth/sessions")
    if deployment.mode == "stateless":
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
        return
    assert response.status_code == 200
    sessions = response.json()["sessions"]
    assert len(sessions) == 2
    assert [s["current"] for s in sessions].count(True) == 1
    for session in sessions:
        assert set(session) == {
            "id",
            "created_at",
            "last_seen_at",
            "expires_at",
            "user_agent",
            "ip",
            "current",
        }
        assert session["user_agent"].startswith("python-httpx")


async def test_sessions_when_not_logged_in_is_401_or_404(deployment: Deployment) -> None:
    async with deployment.client() as client:
        response = await client.get("/auth/sessions")
    assert response.status_code == (404 if deployment.mode == "stateless" else 401)


async def test_deleting_a_session_logs_that_device_out(deployment: Deployment) -> None:
    laptop = await deployment.logged_in()
    phone = await deployment.logged_in()
    async with laptop, phone:
        if deployment.mode == "stateless":
            response = await laptop.client.delete("/auth/sessions/whatever", headers=laptop.headers)
            assert response.status_code == 404
            return
        listing = (await laptop.client.get("/auth/sessions")).json()["sessions"]
        other = next(s["id"] for s in listing if not s["current"])
        response = await laptop.client.delete(f"/auth/sessions/{other}", headers=laptop.headers)
        assert response.status_code == 204
        assert (await phone.me()).status_code == 401
        assert (await laptop.me()).status_code == 200
        again = await laptop.client.delete(f"/auth/sessions/{other}", headers=laptop.headers)
        assert again.status_code == 404


async def test_an_unknown_or_foreign_session_id_is_404_and_untouched(
    deployment: Deployment,
) -> None:
    await deployment.add_user("bob")
    alice = await deployment.logged_in()
    bob = await deployment.logged_in("bob")
    async with alice, bob:
        unknown = await alice.client.delete("/auth/sessions/nope", headers=alice.headers)
        too_long = await alice.client.delete("/auth/sessions/" + "a" * 500, headers=alice.headers)
        assert unknown.status_code == too_long.status_code == 404
        assert unknown.json()["error"] == "not_found"
        if deployment.mode == "stateless":
            return
        bobs = (await bob.client.get("/auth/sessions")).json()["sessions"][0]["id"]
        foreign = await alice.client.delete(f"/auth/sessions/{bobs}", headers=alice.headers)
        assert foreign.status_code == 404
        assert (await bob.me()).status_code == 200


# -- POST /auth/password -------------------------------------------------------------------
async def test_a_password_change_kills_other_sessions_and_keeps_this_one(
    deployment: Deployment,
) -> None:
    here = await deployment.logged_in()
    elsewhere = await deployment.logged_in()
    async with here, elsewhere:
        response = await here.post(
            "/auth/password",
            json={"current_password": PASSWORD, "new_password": "a brand new secret"},
        )
        assert response.status_code == 204
        assert AUTH_COOKIE in set_cookie_headers(response)
        assert (await here.me()).status_code == 200
        assert (await elsewhere.me()).status_code == 401
    async with deployment.client() as client:
        old = await client.post("/auth/login", json={"username": "alice", "password": PASSWORD})
        new = await client.post(
            "/auth/login", json={"username": "alice", "password": "a brand new secret"}
        )
    assert old.status_code == 401
    assert new.status_code == 200


async def test_a_wrong_current_password_or_a_weak_new_one_changes_nothing(
    deployment: Deployment,
) -> None:
    user = await deployment.logged_in()
    other = await deployment.logged_in()
    async with user, other:
        wrong = await user.post(
            "/auth/password", json={"current_password": "not it at all", "new_password": "x" * 12}
        )
        weak = await user.post(
            "/auth/password", json={"current_password": PASSWORD, "new_password": "short"}
        )
        wrong_type = await user.post(
            "/auth/password", json={"current_password": PASSWORD, "new_password": 12345678}
        )
        assert wrong.status_code == 401
        assert wrong.json()["error"] == "invalid_credentials"
        assert weak.status_code == wrong_type.status_code == 400
        assert (await other.me()).status_code == 200
    await deployment.logged_in()  # the old password still works


async def test_password_change_when_not_logged_in_is_401(deployment: Deployment) -> None:
    async with deployment.client() as client:
        response = await client.post(
            "/auth/password", json={"current_password": PASSWORD, "new_password": "x" * 12}
        )
    assert response.status_code == 401


# -- GET /auth/csrf, JWKS, health ----------------------------------------------------------
async def test_csrf_gives_a_token_and_the_csrf_cookie(deployment: Deployment) -> None:
    async with deployment.client() as client:
        anonymous = await client.get("/auth/csrf")
    assert anonymous.status_code == 200
    assert set(anonymous.json()) == {"csrf_token"}
    cookie = set_cookie_headers(anonymous)[CSRF_COOKIE]
    assert "HttpOnly" not in cookie and "Secure" in cookie
    user = await deployment.logged_in()
    async with user:
        token = (await user.client.get("/auth/csrf")).json()["csrf_token"]
        # The token from /auth/csrf works for an unsafe request of this session.
        response = await user.client.post("/auth/logout", headers={"x-csrf-token": token})
    assert response.status_code == 204


async def test_jwks_publishes_public_keys_only(deployment: Deployment) -> None:
    async with deployment.client() as client:
        response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert keys
    for key in keys:
        assert {"kid", "kty", "alg"} <= set(key)
        assert not {"d", "k", "p", "q", "dp", "dq", "qi"} & set(key)


async def test_healthz_is_ok(deployment: Deployment) -> None:
    async with deployment.client() as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


# -- CSRF on unsafe requests ---------------------------------------------------------------
@pytest.mark.parametrize(
    "path", ["/auth/logout", "/auth/logout-all", "/auth/password", "/auth/refresh"]
)
async def test_unsafe_requests_without_the_csrf_token_are_403_and_change_nothing(
    deployment: Deployment, path: str
) -> None:
    user = await deployment.logged_in()
    async with user:
        missing = await user.client.post(
            path, json={"current_password": PASSWORD, "new_password": "x" * 12}
        )
        wrong = await user.client.post(path, headers={"x-csrf-token": "A" * 22 + "." + "B" * 43})
        cross_site = await user.client.post(
            path, headers={**user.headers, "sec-fetch-site": "cross-site"}
        )
        foreign = await user.client.post(
            path, headers={**user.headers, "origin": "https://evil.example"}
        )
        for response in (missing, wrong, cross_site, foreign):
            if path == "/auth/refresh" and deployment.mode != "hybrid":
                continue  # the middleware refuses first, or the route does not exist
            assert response.status_code == 403, response.text
            assert response.json()["error"] == "csrf_failed"
        assert (await user.me()).status_code == 200
    await deployment.logged_in()  # the password did not change


async def test_deleting_a_session_needs_the_csrf_token(deployment: Deployment) -> None:
    user = await deployment.logged_in()
    async with user:
        response = await user.client.delete("/auth/sessions/abc")
    assert response.status_code == 403


# -- routing errors ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path", ["/auth/login", "/auth/logout", "/auth/logout-all", "/auth/refresh", "/auth/password"]
)
async def test_get_on_a_state_changing_route_is_405_json(
    memory_deployment: Deployment, path: str
) -> None:
    user = await memory_deployment.logged_in()
    async with user:
        response = await user.client.get(path)
        assert response.status_code == 405
        assert response.json()["error"] == "method_not_allowed"
        assert "POST" in response.headers["allow"]
        assert (await user.me()).status_code == 200


@pytest.mark.parametrize("path", ["/auth/me", "/auth/csrf", "/healthz", "/.well-known/jwks.json"])
async def test_post_on_a_read_only_route_is_405_json(
    memory_deployment: Deployment, path: str
) -> None:
    async with memory_deployment.client() as client:
        response = await client.post(path)
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


@pytest.mark.parametrize("path", ["/nope", "/auth/nope", "/auth/sessions/a/b", "/.well-known/x"])
async def test_an_unknown_route_is_404_json(memory_deployment: Deployment, path: str) -> None:
    async with memory_deployment.client() as client:
        response = await client.get(path)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
