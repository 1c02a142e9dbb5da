"""The bearer transport in process: ``POST /auth/token`` (RFC 6749) and
``Authorization: Bearer`` on every route, in every mode, beside the cookie rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from authstate._time import FrozenClock
from tests.server.conftest import MODES, PASSWORD, Deployment, deploy, store_url

pytestmark = pytest.mark.anyio

FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture(params=[(m, s) for s in ("memory", "sqlite") for m in MODES], ids=str)
async def bearer(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Deployment]:
    """The app with AUTHSTATE_TRANSPORTS=cookie,bearer in each mode, with user alice."""
    mode, store = request.param
    async for dep in deploy(store_url(store, tmp_path), mode=mode, transports="cookie,bearer"):
        await dep.add_user()
        yield dep


async def token(client: httpx.AsyncClient, **form: str) -> httpx.Response:
    return await client.post("/auth/token", data=form)


async def password_grant(dep: Deployment) -> dict[str, Any]:
    async with dep.client() as client:
        response = await token(client, grant_type="password", username="alice", password=PASSWORD)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer_header(access_token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {access_token}"}


async def test_the_password_grant_answers_rfc_6749_json_and_sets_no_cookie(
    bearer: Deployment,
) -> None:
    async with bearer.client() as client:
        response = await token(client, grant_type="password", username="alice", password=PASSWORD)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert 0 < body["expires_in"] <= 30 * 86400
    assert ("refresh_token" in body) == (bearer.mode == "hybrid")
    assert response.headers.get_list("set-cookie") == []
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


async def test_a_bearer_access_token_authenticates_every_mode(bearer: Deployment) -> None:
    body = await password_grant(bearer)
    async with bearer.client() as client:
        me = await client.get("/auth/me", headers=bearer_header(body["access_token"]))
        anonymous = await client.get("/auth/me")
    assert me.status_code == 200
    assert me.json()["user"]["username"] == "alice"
    assert me.json()["mode"] == bearer.mode
    assert anonymous.status_code == 401


async def test_a_wrong_password_and_an_unknown_user_get_the_same_invalid_grant(
    bearer: Deployment,
) -> None:
    async with bearer.client() as client:
        wrong = await token(client, grant_type="password", username="alice", password="nope" * 4)
        unknown = await token(client, grant_type="password", username="zed", password=PASSWORD)
    assert wrong.status_code == unknown.status_code == 400
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"] == "invalid_grant"
    assert wrong.headers.get_list("set-cookie") == []


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({}, "invalid_request"),
        ({"grant_type": "client_credentials"}, "unsupported_grant_type"),
        ({"grant_type": "password", "username": "alice"}, "invalid_request"),
        ({"grant_type": "password", "username": "alice", "password": ""}, "invalid_request"),
        (
            {"grant_type": "password", "username": "alice", "password": PASSWORD, "scope": "x"},
            "invalid_scope",
        ),
    ],
)
async def test_malformed_token_requests_get_the_rfc_6749_error(
    memory_bearer: Deployment, form: dict[str, str], error: str
) -> None:
    async with memory_bearer.client() as client:
        response = await token(client, **form)
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert response.headers["cache-control"] == "no-store"


async def test_a_repeated_parameter_or_a_json_body_is_an_invalid_request(
    memory_bearer: Deployment,
) -> None:
    async with memory_bearer.client() as client:
        repeated = await client.post(
            "/auth/token",
            content=f"grant_type=password&username=alice&username=bob&password={PASSWORD}",
            headers=FORM,
        )
        as_json = await client.post(
            "/auth/token",
            json={"grant_type": "password", "username": "alice", "password": PASSWORD},
        )
    assert (repeated.status_code, repeated.json()["error"]) == (400, "invalid_request")
    assert (as_json.status_code, as_json.json()["error"]) == (400, "invalid_request")


@pytest.fixture(params=MODES)
async def memory_bearer(request: pytest.FixtureRequest) -> AsyncIterator[Deployment]:
    async for dep in deploy("memory://", mode=request.param, transports="cookie,bearer"):
        await dep.add_user()
        yield dep


async def test_the_refresh_grant_exists_only_in_hybrid_mode(memory_bearer: Deployment) -> None:
    async with memory_bearer.client() as client:
        response = await token(client, grant_type="refresh_token", refresh_token="x" * 43)
    if memory_bearer.mode == "hybrid":
        assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")
    else:
        assert (response.status_code, response.json()["error"]) == (400, "unsupported_grant_type")


async def test_the_token_endpoint_is_throttled_like_login(tmp_path: Path) -> None:
    async for dep in deploy("memory://", transports="cookie,bearer", login_max_attempts=2):
        await dep.add_user()
        async with dep.client() as client:
            for _ in range(2):
                failed = await token(
                    client, grant_type="password", username="alice", password="wrong" * 3
                )
                assert failed.status_code == 400
            throttled = await token(
                client, grant_type="password", username="alice", password=PASSWORD
            )
            # /auth/login shares the count: the same account is throttled there too.
            login = await client.post(
                "/auth/login", json={"username": "alice", "password": PASSWORD}
            )
        assert throttled.status_code == 429
        assert throttled.json()["error"] == "too_many_attempts"
        assert int(throttled.headers["retry-after"]) > 0
        assert login.status_code == 429


async def test_a_cross_site_browser_post_to_the_token_endpoint_is_refused(
    memory_bearer: Deployment,
) -> None:
    async with memory_bearer.client() as client:
        response = await client.post(
            "/auth/token",
            data={"grant_type": "password", "username": "alice", "password": PASSWORD},
            headers={"origin": "https://evil.example", "sec-fetch-site": "cross-site"},
        )
    assert response.status_code == 403
    assert response.headers.get_list("set-cookie") == []


# -- hybrid: rotation, grace, reuse detection through /auth/token ------------------------------
async def hybrid_deployment(clock: FrozenClock) -> AsyncIterator[Deployment]:
    from authstate import AuthState
    from authstate.server.app import create_app
    from authstate.settings import Settings
    from tests.server.conftest import fast_hasher

    settings = Settings.from_env(
        {}, mode="hybrid", store="memory://", transports="cookie,bearer", allowed_hosts="testserver"
    )
    auth = AuthState(settings, password_hasher=fast_hasher(), clock=clock)
    async with auth:
        dep = Deployment(auth, create_app(auth=auth))
        await dep.add_user()
        yield dep


async def test_refresh_rotates_gives_the_same_successor_within_grace_and_revokes_on_reuse() -> None:
    clock = FrozenClock()
    async for dep in hybrid_deployment(clock):
        first = await password_grant(dep)
        async with dep.client() as client:
            rotated = await token(
                client, grant_type="refresh_token", refresh_token=first["refresh_token"]
            )
            assert rotated.status_code == 200
            second = rotated.json()
            assert second["refresh_token"] != first["refresh_token"]
            assert rotated.headers.get_list("set-cookie") == []
            # Within the grace window (a retry after a lost answer): the same successor.
            clock.advance(1)
            retry = await token(
                client, grant_type="refresh_token", refresh_token=first["refresh_token"]
            )
            assert retry.status_code == 200
            assert retry.json()["refresh_token"] == second["refresh_token"]
            # After it: reuse, the whole family dies, its newest token and access token too.
            clock.advance(dep.auth.settings.refresh_grace_seconds + 1)
            reused = await token(
                client, grant_type="refresh_token", refresh_token=first["refresh_token"]
            )
            assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")
            after = await token(
                client, grant_type="refresh_token", refresh_token=second["refresh_token"]
            )
            assert after.status_code == 400
            me = await client.get("/auth/me", headers=bearer_header(second["access_token"]))
            assert me.status_code == 401


async def test_a_refresh_grant_beside_another_familys_access_token_is_refused() -> None:
    clock = FrozenClock()
    async for dep in hybrid_deployment(clock):
        mine = await password_grant(dep)
        other = await password_grant(dep)
        async with dep.client() as client:
            response = await client.post(
                "/auth/token",
                data={"grant_type": "refresh_token", "refresh_token": other["refresh_token"]},
                headers=bearer_header(mine["access_token"]),
            )
            assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")
            # Refused before anything changed: the other family still rotates.
            ok = await token(
                client, grant_type="refresh_token", refresh_token=other["refresh_token"]
            )
            assert ok.status_code == 200


# -- the header beside the cookie rules --------------------------------------------------------
async def test_a_request_with_a_cookie_and_a_bearer_header_is_refused(bearer: Deployment) -> None:
    body = await password_grant(bearer)
    async with await bearer.logged_in() as browser:
        response = await browser.client.get("/auth/me", headers=bearer_header(body["access_token"]))
        still = await browser.me()
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"
    assert "not both" in response.json()["detail"]
    assert still.status_code == 200


async def test_a_header_request_needs_no_csrf_token_and_a_cookie_request_still_does(
    bearer: Deployment,
) -> None:
    body = await password_grant(bearer)
    async with await bearer.logged_in() as browser:
        no_token = await browser.client.post("/auth/logout")
        assert (no_token.status_code, no_token.json()["error"]) == (403, "csrf_failed")
    async with bearer.client() as client:
        headers = bearer_header(body["access_token"])
        logout = await client.post("/auth/logout", headers=headers)
        assert logout.status_code == 204
        # A header client holds no cookie: nothing to clear.
        assert logout.headers.get_list("set-cookie") == []
        me = await client.get("/auth/me", headers=headers)
    assert me.status_code == 401


async def test_logout_all_and_the_session_routes_work_with_a_bearer_token(
    bearer: Deployment,
) -> None:
    first = await password_grant(bearer)
    second = await password_grant(bearer)
    async with bearer.client() as client:
        headers = bearer_header(first["access_token"])
        if bearer.mode != "stateless":
            listed = await client.get("/auth/sessions", headers=headers)
            assert listed.status_code == 200
            sessions = listed.json()["sessions"]
            assert len(sessions) == 2
            other = next(s for s in sessions if not s["current"])
            deleted = await client.delete(f"/auth/sessions/{other['id']}", headers=headers)
            assert deleted.status_code == 204
            gone = await client.get("/auth/me", headers=bearer_header(second["access_token"]))
            assert gone.status_code == 401
        everywhere = await client.post("/auth/logout-all", headers=headers)
        assert everywhere.status_code == 204
        me = await client.get("/auth/me", headers=headers)
    assert me.status_code == 401


async def test_with_bearer_off_the_header_is_ignored_and_the_token_endpoint_is_404(
    memory_deployment: Deployment,
) -> None:
    issued = await memory_deployment.auth.login("u1", ["staff"])
    async with memory_deployment.client() as client:
        header_only = await client.get("/auth/me", headers=bearer_header(issued.auth_value))
        endpoint = await token(client, grant_type="password", username="alice", password=PASSWORD)
    async with await memory_deployment.logged_in() as browser:
        # The header is not read at all: no mixed-credential refusal, the cookie decides.
        both = await browser.client.get("/auth/me", headers=bearer_header(issued.auth_value))
    assert header_only.status_code == 401
    assert (endpoint.status_code, endpoint.json()["error"]) == (404, "not_found")
    assert both.status_code == 200
    assert both.json()["user"]["username"] == "alice"


async def test_a_password_change_by_header_answers_new_tokens_and_no_cookie(
    bearer: Deployment,
) -> None:
    old = await password_grant(bearer)
    async with bearer.client() as client:
        changed = await client.post(
            "/auth/password",
            json={"current_password": PASSWORD, "new_password": "a new passw0rd, longer"},
            headers=bearer_header(old["access_token"]),
        )
        assert changed.status_code == 200, changed.text
        assert changed.headers.get_list("set-cookie") == []
        new = changed.json()
        assert new["token_type"] == "Bearer"
        assert ("refresh_token" in new) == (bearer.mode == "hybrid")
        assert (
            await client.get("/auth/me", headers=bearer_header(new["access_token"]))
        ).status_code == 200
        assert (
            await client.get("/auth/me", headers=bearer_header(old["access_token"]))
        ).status_code == 401


async def test_a_401_challenges_header_clients_with_the_bearer_scheme(bearer: Deployment) -> None:
    """RFC 6750 §3: no credential, or a refused token, gets WWW-Authenticate: Bearer."""
    async with bearer.client() as client:
        none = await client.get("/auth/me")
        refused = await client.get("/auth/me", headers=bearer_header("not-a-valid-token"))
    assert none.headers["www-authenticate"] == "Bearer"
    assert refused.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert refused.json() == {"error": "unauthenticated", "detail": "authentication required"}


async def test_without_bearer_a_401_names_no_scheme(memory_deployment: Deployment) -> None:
    async with memory_deployment.client() as client:
        response = await client.get("/auth/me", headers=bearer_header("x"))
    assert response.status_code == 401
    assert "www-authenticate" not in response.headers


async def test_session_data_is_read_and_updated_by_header_without_csrf(
    bearer: Deployment,
) -> None:
    tokens = await password_grant(bearer)
    headers = bearer_header(tokens["access_token"])
    async with bearer.client() as client:
        patched = await client.patch("/auth/session/data", json={"cart": [1, 2]}, headers=headers)
        read = await client.get("/auth/session/data", headers=headers)
    if bearer.mode == "stateless":
        assert patched.status_code == read.status_code == 404
    else:
        assert patched.status_code == 200, patched.text
        assert read.json()["data"] == {"cart": [1, 2]}
