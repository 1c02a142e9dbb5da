"""The bearer transport through a real ``authstate serve``, with httpx as the header client:
``POST /auth/token``, ``Authorization: Bearer`` on the routes, the rules beside the cookie
(mixed credentials, CSRF), refresh rotation and reuse detection, throttling; on SQLite in
every mode, and on PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.serve_process import Served, clean_env, cookie_header, serve
from tests.multinode.conftest import postgres_schema_url, redis_prefixed_url

__all__ = ["postgres_schema_url", "redis_prefixed_url"]  # fixtures, used by name below

SECRET = "bearer-e2e-secret-0123456789abcdef0123456789"
BEARER_ENV = {"AUTHSTATE_TRANSPORTS": "cookie,bearer"}


def started(tmp_path: Path, mode: str, store: str | None = None, **env: str) -> Iterator[Served]:
    args = ["--mode", mode, "--demo"]
    if store is not None:
        args += ["--store", store]
    with serve(tmp_path, *args, env=clean_env(AUTHSTATE_SECRET=SECRET, **env)) as served:
        yield served


@pytest.fixture(params=["stateless", "session", "hybrid"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    yield from started(tmp_path, request.param, **BEARER_ENV)


def client(served: Served) -> httpx.Client:
    return httpx.Client(base_url=served.url, timeout=10)


def password_grant(http: httpx.Client, served: Served, name: str = "alice") -> dict[str, Any]:
    password = served.demo_passwords()[name]
    response = http.post(
        "/auth/token", data={"grant_type": "password", "username": name, "password": password}
    )
    assert response.status_code == 200, response.text
    assert response.headers.get_list("set-cookie") == []
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_header_client_signs_in_calls_and_signs_out_without_csrf(server: Served) -> None:
    with client(server) as http:
        tokens = password_grant(http, server)
        mode = http.get("/auth/me", headers=bearer(tokens["access_token"])).json()["mode"]
        assert tokens["token_type"] == "Bearer" and tokens["expires_in"] > 0
        assert ("refresh_token" in tokens) == (mode == "hybrid")
        me = http.get("/auth/me", headers=bearer(tokens["access_token"]))
        assert (me.status_code, me.json()["user"]["username"]) == (200, "alice")
        if mode != "stateless":
            sessions = http.get("/auth/sessions", headers=bearer(tokens["access_token"]))
            assert [s["current"] for s in sessions.json()["sessions"]] == [True]
        logout = http.post("/auth/logout", headers=bearer(tokens["access_token"]))
        assert logout.status_code == 204
        assert logout.headers.get_list("set-cookie") == []
        assert http.get("/auth/me", headers=bearer(tokens["access_token"])).status_code == 401


def test_the_cookie_keeps_its_csrf_rule_and_never_travels_with_a_header(server: Served) -> None:
    with client(server) as http:
        tokens = password_grant(http, server, "bob")
        login = http.post(
            "/auth/login",
            json={"username": "alice", "password": server.demo_passwords()["alice"]},
        )
        cookie = {"Cookie": cookie_header(login)}
        no_token = http.post("/auth/logout-all", headers=cookie)
        assert (no_token.status_code, no_token.json()["error"]) == (403, "csrf_failed")
        mixed = http.get("/auth/me", headers={**cookie, **bearer(tokens["access_token"])})
        assert (mixed.status_code, mixed.json()["error"]) == (400, "bad_request")
        # Neither credential was harmed by the refusal.
        assert http.get("/auth/me", headers=cookie).json()["user"]["username"] == "alice"
        me = http.get("/auth/me", headers=bearer(tokens["access_token"]))
        assert me.json()["user"]["username"] == "bob"


def test_wrong_passwords_are_one_invalid_grant_then_throttled(tmp_path: Path) -> None:
    for served in started(tmp_path, "session", AUTHSTATE_LOGIN_MAX_ATTEMPTS="2", **BEARER_ENV):
        with client(served) as http:
            answers = [
                http.post(
                    "/auth/token",
                    data={"grant_type": "password", "username": name, "password": "wrong!!!!"},
                )
                for name in ("alice", "nobody")
            ]
            assert [a.status_code for a in answers] == [400, 400]
            assert answers[0].json() == answers[1].json()
            assert answers[0].json()["error"] == "invalid_grant"
            throttled = http.post(
                "/auth/token",
                data={
                    "grant_type": "password",
                    "username": "alice",
                    "password": served.demo_passwords()["alice"],
                },
            )
            assert throttled.status_code == 429
            assert int(throttled.headers["retry-after"]) >= 1


def test_with_the_default_transport_the_token_endpoint_is_404_and_the_header_ignored(
    tmp_path: Path,
) -> None:
    for served in started(tmp_path, "hybrid"):
        with client(served) as http:
            password = served.demo_passwords()["alice"]
            response = http.post(
                "/auth/token",
                data={"grant_type": "password", "username": "alice", "password": password},
            )
            assert (response.status_code, response.json()["error"]) == (404, "not_found")
            login = http.post("/auth/login", json={"username": "alice", "password": password})
            cookie = cookie_header(login)
            access = cookie.split("__Host-authstate=", 1)[1].split(";", 1)[0]
            assert http.get("/auth/me", headers=bearer(access)).status_code == 401
            both = http.get("/auth/me", headers={"Cookie": cookie, **bearer(access)})
            assert both.status_code == 200


def rotation_and_reuse(served: Served) -> None:
    """Hybrid: the refresh grant rotates; a retry within the grace window gets the same
    successor; an older token is reuse and revokes the family (its newest token and the
    access token of its last rotation with it)."""
    with client(served) as http:
        first = password_grant(http, served)

        def refresh(token: str) -> httpx.Response:
            return http.post(
                "/auth/token", data={"grant_type": "refresh_token", "refresh_token": token}
            )

        second = refresh(first["refresh_token"])
        assert second.status_code == 200, second.text
        assert second.headers.get_list("set-cookie") == []
        retry = refresh(first["refresh_token"])  # a lost answer, retried within 10 s
        assert retry.json()["refresh_token"] == second.json()["refresh_token"]
        third = refresh(second.json()["refresh_token"]).json()
        assert http.get("/auth/me", headers=bearer(third["access_token"])).status_code == 200
        reused = refresh(first["refresh_token"])
        assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")
        assert refresh(third["refresh_token"]).status_code == 400
        assert http.get("/auth/me", headers=bearer(third["access_token"])).status_code == 401


def test_hybrid_refresh_rotation_and_reuse_detection_on_sqlite(tmp_path: Path) -> None:
    for served in started(tmp_path, "hybrid", **BEARER_ENV):
        rotation_and_reuse(served)


@pytest.mark.parametrize("store", ["postgres_schema_url", "redis_prefixed_url"])
def test_hybrid_refresh_rotation_and_reuse_detection_on_shared_stores(
    store: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url: str = request.getfixturevalue(store)
    for served in started(tmp_path, "hybrid", url, **BEARER_ENV):
        rotation_and_reuse(served)


@pytest.mark.parametrize("store", ["postgres_schema_url", "redis_prefixed_url"])
def test_a_session_id_works_as_a_bearer_token_on_shared_stores(
    store: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url: str = request.getfixturevalue(store)
    for served in started(tmp_path, "session", url, **BEARER_ENV):
        with client(served) as http:
            tokens = password_grant(http, served)
            headers = bearer(tokens["access_token"])
            assert http.get("/auth/me", headers=headers).json()["mode"] == "session"
            assert http.post("/auth/logout-all", headers=headers).status_code == 204
            assert http.get("/auth/me", headers=headers).status_code == 401
