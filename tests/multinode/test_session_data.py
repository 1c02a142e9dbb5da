"""Server-side session data through real ``authstate serve`` processes on one shared store:
an update on one node is read back on another at once (data is read from the store, never
from a node's session cache), in session mode and in hybrid mode, where the data belongs to
the refresh family and survives its rotation. Refusals (cap, CSRF) change nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.serve_process import Served
from tests.multinode.nodes import Session, add_user, cluster, login

pytestmark = pytest.mark.slow

DATA = "/auth/session/data"


def read(node: Served, session: Session) -> httpx.Response:
    return httpx.get(f"{node.url}{DATA}", headers={"cookie": session.cookie}, timeout=10)


def patch(node: Served, session: Session, body: Any, *, csrf: bool = True) -> httpx.Response:
    headers = {"cookie": session.cookie}
    if csrf:
        headers["x-csrf-token"] = session.csrf
    return httpx.patch(f"{node.url}{DATA}", json=body, headers=headers, timeout=10)


def all_cookies(response: httpx.Response, previous: str = "") -> str:
    """Every cookie set, the refresh cookie (``Path=/auth``) included."""
    jar = dict(pair.split("=", 1) for pair in previous.split("; ") if "=" in pair)
    for value in response.headers.get_list("set-cookie"):
        name, rest = value.split("=", 1)
        jar[name] = rest.split(";", 1)[0]
    return "; ".join(f"{k}={v}" for k, v in jar.items())


@pytest.mark.parametrize("mode", ["session", "hybrid"])
def test_an_update_on_one_node_is_read_on_the_other_at_once(
    tmp_path: Path, shared_store: str, mode: str
) -> None:
    name = add_user(shared_store)
    with cluster(tmp_path, shared_store, mode, count=2) as (a, b):
        session = login(a, name)
        # Both nodes have the session cached (and its data, empty, in the cached record).
        assert read(a, session).json() == {"data": {}}
        assert read(b, session).json() == {"data": {}}

        updated = patch(a, session, {"cart": [1, 2], "theme": "dark"})
        assert updated.status_code == 200, updated.text
        assert updated.json() == {"data": {"cart": [1, 2], "theme": "dark"}}
        assert "no-store" in updated.headers["cache-control"]
        assert read(b, session).json() == {"data": {"cart": [1, 2], "theme": "dark"}}

        # Per key: b's update of one key and deletion of another keep a's other key.
        assert patch(b, session, {"cart": [3], "theme": None}).status_code == 200
        assert read(a, session).json() == {"data": {"cart": [3]}}

        # Refusals change nothing: no CSRF token, over the cap, not a JSON object.
        assert patch(a, session, {"x": 1}, csrf=False).status_code == 403
        too_big = patch(b, session, {"blob": "x" * 20_000})
        assert too_big.status_code == 413
        assert too_big.json()["error"] == "session_data_too_large"
        assert patch(a, session, [1, 2]).status_code == 400
        assert read(a, session).json() == {"data": {"cart": [3]}}
        assert read(b, session).json() == {"data": {"cart": [3]}}

        # Logging out ends the session and its data.
        logout = httpx.post(
            f"{a.url}/auth/logout",
            headers={"cookie": session.cookie, "x-csrf-token": session.csrf},
            timeout=10,
        )
        assert logout.status_code == 204
        assert read(b, session).status_code == 401


def test_hybrid_data_survives_refresh_rotation_on_another_node(
    tmp_path: Path, shared_store: str
) -> None:
    name = add_user(shared_store)
    with cluster(tmp_path, shared_store, "hybrid", count=2) as (a, b):
        response = httpx.post(
            f"{a.url}/auth/login",
            json={"username": name, "password": "correct horse battery"},
            timeout=10,
        )
        cookies, csrf = all_cookies(response), response.json()["csrf_token"]
        session = Session(cookies, csrf)
        assert patch(a, session, {"wizard": {"step": 2}}).status_code == 200
        rotated = httpx.post(
            f"{b.url}/auth/refresh", headers={"cookie": cookies, "x-csrf-token": csrf}, timeout=10
        )
        assert rotated.status_code == 200, rotated.text
        after = Session(all_cookies(rotated, cookies), rotated.json()["csrf_token"])
        assert after.cookie != cookies
        assert read(a, after).json() == {"data": {"wizard": {"step": 2}}}
        assert patch(b, after, {"wizard": {"step": 3}}).status_code == 200
        assert read(a, after).json() == {"data": {"wizard": {"step": 3}}}


def test_stateless_mode_has_no_session_data(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/stateless.db"
    name = add_user(store)
    with cluster(tmp_path, store, "stateless", count=1) as (node,):
        session = login(node, name)
        assert read(node, session).status_code == 404
        assert patch(node, session, {"a": 1}).status_code == 404
