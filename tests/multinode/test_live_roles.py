"""Live roles on three ``authstate serve`` nodes sharing a store, in each mode: the CLI
changes a user's roles in the store, and every node follows within the propagation bound
(docs/concepts.md, "Live roles and claims")."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
import pytest

from authstate.cookies import REFRESH_COOKIE
from tests.cli.serve_process import Served, cookie_header, run_cli, wait_until
from tests.multinode.nodes import Session, cluster, node_env

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"
# Seconds every node gets to follow a change: generous for a loaded machine; the tests
# wait for the change, they never assert how long it took.
BOUND = 10.0


def add_admin(store: str) -> str:
    name = "u" + secrets.token_hex(6)
    result = run_cli(
        *("users", "add", name, "--role", "admin", "--password-stdin", "--store", store),
        stdin=PASSWORD,
        env=node_env(),
    )
    assert result.returncode == 0, result.stderr
    return name


def demote(store: str, name: str) -> None:
    result = run_cli("users", "roles", name, "viewer", "--store", store, env=node_env())
    assert result.returncode == 0, result.stderr


def me(node: Served, session: Session) -> httpx.Response:
    return httpx.get(f"{node.url}/auth/me", headers={"cookie": session.cookie}, timeout=10)


def roles(node: Served, session: Session) -> list[str] | None:
    response = me(node, session)
    if response.status_code != 200:
        return None
    found: list[str] = response.json()["user"]["roles"]
    return found


def stale(node: Served, session: Session) -> bool:
    response = me(node, session)
    return response.status_code == 401 and response.json()["error"] == "token_stale"


@pytest.mark.parametrize("mode", ["session", "hybrid", "stateless"])
def test_a_demotion_reaches_every_node(tmp_path: Path, shared_store: str, mode: str) -> None:
    """Logged in as admin on node 0 and seen as admin on every node; after ``authstate
    users roles NAME viewer`` no node answers "admin" for that login any more: session
    mode shows "viewer" for the same cookie, the JWT modes refuse the old token with
    ``token_stale``, and a refresh (hybrid) or a new login (stateless) carries "viewer"."""
    name = add_admin(shared_store)
    with cluster(tmp_path, shared_store, mode) as nodes:
        response = httpx.post(
            f"{nodes[0].url}/auth/login",
            json={"username": name, "password": PASSWORD},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        session = Session(cookie_header(response), response.json()["csrf_token"])
        refresh_token = _refresh_cookie(response)
        for node in nodes:
            assert roles(node, session) == ["admin"]

        demote(shared_store, name)

        if mode == "session":
            for node in nodes:
                assert wait_until(lambda n=node: roles(n, session) == ["viewer"], BOUND), (
                    f"{node.url} still shows {roles(node, session)}"
                )
            return
        for node in nodes:
            assert wait_until(lambda n=node: stale(n, session), BOUND), (
                f"{node.url} answers {me(node, session).status_code} for the old token"
            )
        if mode == "hybrid":
            renewed = httpx.post(
                f"{nodes[1].url}/auth/refresh",
                headers={
                    "cookie": f"{REFRESH_COOKIE}={refresh_token}",
                    "x-csrf-token": session.csrf,
                },
                timeout=10,
            )
        else:
            renewed = httpx.post(
                f"{nodes[1].url}/auth/login",
                json={"username": name, "password": PASSWORD},
                timeout=10,
            )
        assert renewed.status_code == 200, renewed.text
        assert renewed.json()["user"]["roles"] == ["viewer"]
        fresh = Session(cookie_header(renewed), renewed.json()["csrf_token"])
        for node in nodes:
            assert roles(node, fresh) == ["viewer"]


def _refresh_cookie(response: httpx.Response) -> str | None:
    for header in response.headers.get_list("set-cookie"):
        name, rest = header.split("=", 1)
        if name == REFRESH_COOKIE:
            return rest.split(";", 1)[0]
    return None
