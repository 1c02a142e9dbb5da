"""``require`` of the Flask extension and of the Django views, in-process: the answers of
the ASGI ``require`` (401 ``token_stale`` for a token with outdated roles, 401
``reauth_required`` past ``fresh``), and ``POST /auth/reauth`` making a route fresh again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from authstate import FrozenClock
from authstate.flask import AuthState

PASSWORD = "correct horse battery staple"
BASE = "https://testserver"


@pytest.fixture
def flask_app(tmp_path: Path) -> Iterator[tuple[Flask, AuthState]]:
    app = Flask(__name__)
    auth = AuthState(app, store=f"sqlite:///{tmp_path}/require.db", mode="hybrid")
    auth.core.clock = FrozenClock()  # before start: the whole core runs on it

    @app.post("/refund")
    @auth.require(role="staff", fresh=300)
    def refund() -> dict[str, bool]:
        return {"refunded": True}

    @app.get("/report")
    @auth.require(role="staff")
    def report() -> dict[str, bool]:
        return {"report": True}

    auth.start()
    auth.run(auth.core.accounts.add_user("alice", PASSWORD, roles=("staff",)))
    auth.run(auth.core.accounts.add_user("bob", PASSWORD, roles=("staff",)))
    yield app, auth
    auth.stop()


def _login(app: Flask, name: str) -> tuple[Any, dict[str, str]]:
    client = app.test_client()
    response = client.post(
        "/auth/login", json={"username": name, "password": PASSWORD}, base_url=BASE
    )
    assert response.status_code == 200, response.text
    return client, {"X-CSRF-Token": response.json["csrf_token"]}


def test_fresh_needs_a_recent_password_check_and_reauth_restores_it(
    flask_app: tuple[Flask, AuthState],
) -> None:
    app, auth = flask_app
    clock = auth.core.clock
    assert isinstance(clock, FrozenClock)
    client, headers = _login(app, "alice")
    assert client.post("/refund", headers=headers, base_url=BASE).status_code == 200
    clock.advance(301)
    stale = client.post("/refund", headers=headers, base_url=BASE)
    assert stale.status_code == 401
    assert stale.json == {
        "error": "reauth_required",
        "detail": "confirm your password to continue",
    }
    assert client.get("/report", base_url=BASE).status_code == 200  # a login is still one
    others = client.post("/auth/sessions/revoke-others", headers=headers, base_url=BASE)
    assert (others.status_code, others.json["error"]) == (401, "reauth_required")
    reauth = client.post(
        "/auth/reauth", json={"password": PASSWORD}, headers=headers, base_url=BASE
    )
    assert reauth.status_code == 200, reauth.text
    headers = {"X-CSRF-Token": reauth.json["csrf_token"]}
    assert client.post("/refund", headers=headers, base_url=BASE).status_code == 200
    assert (
        client.post("/auth/sessions/revoke-others", headers=headers, base_url=BASE).status_code
        == 204
    )


def test_a_token_with_outdated_roles_is_token_stale_until_refreshed(
    flask_app: tuple[Flask, AuthState],
) -> None:
    app, auth = flask_app
    client, headers = _login(app, "bob")
    assert client.get("/report", base_url=BASE).status_code == 200
    bob = auth.run(auth.core.accounts.get_by_name("bob"))
    auth.run(auth.core.set_roles(bob.id, ["viewer"]))
    for path in ("/report", "/auth/me"):
        stale = client.get(path, base_url=BASE)
        assert stale.status_code == 401
        assert stale.json == {
            "error": "token_stale",
            "detail": "roles changed: refresh the access token",
        }
    refreshed = client.post("/auth/refresh", headers=headers, base_url=BASE)
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json["user"]["roles"] == ["viewer"]
    denied = client.get("/report", base_url=BASE)
    assert denied.status_code == 403
    assert denied.json == {"error": "forbidden", "detail": "the role 'staff' is required"}


def test_fresh_must_be_seconds() -> None:
    auth = AuthState(store="sqlite:///:memory:")
    with pytest.raises(ValueError):
        auth.require(fresh=-1)
