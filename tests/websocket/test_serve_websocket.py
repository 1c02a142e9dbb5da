"""``GET /auth/ws`` and WebSocket authentication through a real ``authstate serve``, with the
``websockets`` client library."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from tests.cli.serve_process import serve
from tests.multinode.nodes import Session, add_user, login, me, node_env, post
from tests.websocket.client import close_code, next_json, open_socket, refused_status, ws_url

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"


def me_body(node_url: str, session: Session) -> object:
    response = httpx.get(f"{node_url}/auth/me", headers={"cookie": session.cookie}, timeout=5)
    assert response.status_code == 200
    return response.json()


DISABLE = """
import asyncio, sys
from authstate import AuthState

async def main() -> None:
    async with AuthState(store=sys.argv[1]) as auth:
        user = await auth.store.get_user_by_name(sys.argv[2])
        await auth.disable_user(user.id)

asyncio.run(main())
"""


def disable_user(store: str, name: str) -> None:
    """``AuthState.disable_user`` in a process of its own (the CLI has no such command)."""
    env = node_env(PYTHONPATH=os.pathsep.join(sys.path))
    result = subprocess.run(
        [sys.executable, "-c", DISABLE, store, name],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.fixture
def store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/ws.db"


@pytest.mark.parametrize("mode", ["stateless", "session", "hybrid"])
def test_the_first_message_is_the_me_body_and_a_logout_closes_the_socket_with_4401(
    tmp_path: Path, store: str, mode: str
) -> None:
    name = add_user(store)
    with serve(tmp_path, "--mode", mode, "--store", store, env=node_env()) as node:
        session = login(node, name)
        with open_socket(node, session.cookie) as socket:
            assert next_json(socket) == me_body(node.url, session)
            assert post(node, "/auth/logout", session).status_code == 204
            assert close_code(socket) == 4401


def test_a_handshake_without_a_valid_cookie_or_from_a_foreign_origin_is_refused(
    tmp_path: Path, store: str
) -> None:
    name = add_user(store)
    with serve(tmp_path, "--store", store, env=node_env()) as node:
        session = login(node, name)
        assert refused_status(node, None) == 401
        auth_cookie = session.cookie.split("; ")[0]
        forged = auth_cookie.split("=", 1)[0] + "=" + "A" * 40
        assert refused_status(node, forged) == 401
        # Cross-site WebSocket hijacking: a page elsewhere opens a socket with the cookie.
        assert refused_status(node, session.cookie, origin="https://evil.example") == 403
        assert refused_status(node, session.cookie, origin="null") == 403
        # The same cookie from the server's own page, or from a client that sends no Origin.
        with open_socket(node, session.cookie) as socket:
            assert next_json(socket)["user"]["username"] == name
        with open_socket(node, session.cookie, origin=None) as socket:
            assert next_json(socket)["user"]["username"] == name


@pytest.mark.parametrize("mode", ["session", "hybrid"])
def test_the_session_list_is_pushed_when_the_user_logs_in_elsewhere_or_out(
    tmp_path: Path, store: str, mode: str
) -> None:
    name = add_user(store)
    with serve(tmp_path, "--mode", mode, "--store", store, env=node_env()) as node:
        first = login(node, name)
        with open_socket(node, first.cookie) as socket:
            next_json(socket)
            second = login(node, name)  # a login elsewhere: announced on the bus
            pushed = next_json(socket)
            assert pushed["type"] == "sessions"
            assert len(pushed["sessions"]) == 2
            assert [s["current"] for s in pushed["sessions"]].count(True) == 1
            assert post(node, "/auth/logout", second).status_code == 204
            pushed = next_json(socket)
            assert [s["current"] for s in pushed["sessions"]] == [True]
            # The socket's own session is untouched by the other one's logout.
            assert socket.close_code is None


def test_a_socket_is_closed_with_4401_when_its_session_idles_out(
    tmp_path: Path, store: str
) -> None:
    # AUTHSTATE_IDLE_TTL=2s: the session dies 2 to 2.5 s after its last recorded use, and
    # the open socket is not use.
    name = add_user(store)
    env = node_env(AUTHSTATE_IDLE_TTL="2s")
    with serve(tmp_path, "--mode", "session", "--store", store, env=env) as node:
        session = login(node, name)
        with open_socket(node, session.cookie) as socket:
            assert next_json(socket)["session"] is not None
            assert close_code(socket) == 4401  # a hang guard (15 s), not a latency claim
        assert me(node, session) == 401


@pytest.mark.parametrize("mode", ["stateless", "session", "hybrid"])
@pytest.mark.parametrize("revoke", ["logout-all", "password", "disable"])
def test_revoking_the_user_closes_the_socket_with_4401(
    tmp_path: Path, store: str, mode: str, revoke: str
) -> None:
    name = add_user(store)
    with serve(tmp_path, "--mode", mode, "--store", store, env=node_env()) as node:
        session = login(node, name)
        with open_socket(node, session.cookie) as socket:
            next_json(socket)
            if revoke == "logout-all":
                assert post(node, "/auth/logout-all", session).status_code == 204
            elif revoke == "password":
                response = httpx.post(
                    f"{node.url}/auth/password",
                    json={"current_password": PASSWORD, "new_password": "a new horse battery"},
                    headers={"cookie": session.cookie, "x-csrf-token": session.csrf},
                    timeout=10,
                )
                assert response.status_code == 204, response.text
            else:  # another process, as an admin tool would: the change comes by the bus
                disable_user(store, name)
            assert close_code(socket) == 4401


def test_an_open_socket_outlives_the_http_timeouts_and_counts_in_the_connection_cap(
    tmp_path: Path, store: str
) -> None:
    name = add_user(store)
    env = node_env(
        AUTHSTATE_HEADER_TIMEOUT="0.5", AUTHSTATE_BODY_TIMEOUT="0.5", AUTHSTATE_MAX_CONNECTIONS="2"
    )
    with serve(tmp_path, "--store", store, env=env) as node:
        session = login(node, name)
        with open_socket(node, session.cookie) as first, open_socket(node, session.cookie):
            next_json(first)
            time.sleep(1.5)  # three header timeouts: an HTTP connection would be gone
            assert first.ping().wait(10)
            # Both sockets hold the two connections the cap allows.
            with socket.create_connection(("127.0.0.1", node.port), timeout=10) as extra:
                assert extra.recv(1024).startswith(b"HTTP/1.1 503")


def test_a_message_over_64_kib_closes_the_socket_with_1009(tmp_path: Path, store: str) -> None:
    name = add_user(store)
    with serve(tmp_path, "--store", store, env=node_env()) as node:
        session = login(node, name)
        with open_socket(node, session.cookie) as socket_:
            next_json(socket_)
            socket_.send("x" * (64 * 1024 + 1))
            assert close_code(socket_) == 1009


# authstate serve in an interpreter where the websockets package cannot be imported.
WITHOUT_WEBSOCKETS = [
    sys.executable,
    "-c",
    "import sys; sys.modules['websockets'] = None\n"
    "from authstate.cli import main\n"
    "sys.exit(main())",
]


def test_without_the_websockets_package_serve_starts_and_says_what_is_missing(
    tmp_path: Path, store: str
) -> None:
    with serve(tmp_path, "--store", store, env=node_env(), command=WITHOUT_WEBSOCKETS) as node:
        assert "GET /auth/ws needs the websockets package" in node.stdout
        assert httpx.get(f"{node.url}/healthz", timeout=5).status_code == 200
        upgrade = {"connection": "upgrade", "upgrade": "websocket", "sec-websocket-version": "13"}
        answer = httpx.get(f"{node.url}/auth/ws", headers=upgrade, timeout=5)
        assert answer.status_code == 404


def test_a_bearer_client_opens_auth_ws_and_is_closed_with_4401_on_logout_everywhere(
    tmp_path: Path, store: str
) -> None:
    name = add_user(store)
    env = node_env(AUTHSTATE_TRANSPORTS="cookie,bearer")
    with serve(tmp_path, "--store", store, env=env) as node:
        token = httpx.post(
            f"{node.url}/auth/token",
            data={"grant_type": "password", "username": name, "password": PASSWORD},
            timeout=10,
        ).json()["access_token"]
        bearer = {"authorization": f"Bearer {token}"}
        body = httpx.get(f"{node.url}/auth/me", headers=bearer, timeout=5).json()
        with connect(ws_url(node), additional_headers=bearer, open_timeout=10) as socket:
            assert next_json(socket) == body
            response = httpx.post(f"{node.url}/auth/logout-all", headers=bearer, timeout=10)
            assert response.status_code == 204
            assert close_code(socket) == 4401
        # A cookie beside the header: which one was meant cannot be known.
        cookie = login(node, name).cookie
        assert refused_status(node, cookie, headers=bearer) == 400
