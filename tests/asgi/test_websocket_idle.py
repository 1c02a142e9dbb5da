"""Session idle expiry of open sockets (session mode): a socket is closed with 4401 when its
session idles out, a use of the session elsewhere moves that moment, and an open socket is
not itself use. ``/auth/ws`` pushes the list when a listed session idles out.

The clock is frozen: timers run in real time (seconds here) but every expiry decision reads
the frozen clock, so each step is ordered by the test, not by how fast the machine is."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from authstate import AuthState
from authstate._time import FrozenClock
from authstate.crypto.ids import hash_secret
from authstate.errors import AuthenticationError
from authstate.stores.base import Change, ChangeKind
from tests.cli.serve_process import wait_until

OWN_ORIGIN = "http://testserver"
IDLE_TTL = 2.0  # seconds; the last_seen interval is a quarter: 0.5 s, the idle window 2.5 s


def make_auth(clock: FrozenClock) -> AuthState:
    return AuthState(mode="session", store="memory://", idle_ttl=f"{IDLE_TTL:g}s", clock=clock)


def echo_app(auth: AuthState) -> Starlette:
    async def echo(websocket: WebSocket) -> None:
        await auth.require()(websocket)
        await websocket.accept()
        while True:
            await websocket.send_text(await websocket.receive_text())

    return Starlette(
        routes=[WebSocketRoute("/echo", echo), Mount("/auth", auth.routes())],
        middleware=[auth.middleware()],
    )


@pytest.fixture
def served() -> Iterator[tuple[TestClient, AuthState, FrozenClock]]:
    clock = FrozenClock()
    auth = make_auth(clock)
    with TestClient(echo_app(auth)) as client:
        yield client, auth, clock


def log_in(client: TestClient, auth: AuthState) -> str:
    assert client.portal is not None
    return client.portal.call(auth.login, "user-1").auth_value


def headers(auth: AuthState, auth_value: str) -> dict[str, str]:
    return {"cookie": f"{auth.cookie_policy.auth_cookie_name}={auth_value}", "origin": OWN_ORIGIN}


def last_seen(client: TestClient, auth: AuthState, auth_value: str) -> float:
    assert client.portal is not None
    record = client.portal.call(auth.store.get_session, hash_secret(auth_value))
    assert record is not None
    return record.last_seen_at


def test_a_socket_is_closed_with_4401_when_its_session_idles_out_and_is_not_use(
    served: tuple[TestClient, AuthState, FrozenClock], caplog: pytest.LogCaptureFixture
) -> None:
    client, auth, clock = served
    caplog.set_level(logging.DEBUG, logger="authstate.http")
    value = log_in(client, auth)
    opened_at = last_seen(client, auth, value)
    with client.websocket_connect("/echo", headers=headers(auth, value)) as socket:
        socket.send_text("ping")
        assert socket.receive_text() == "ping"
        # A change naming the session that does not end it makes this node re-check the
        # socket, one last_seen interval after the last recorded use: no use recorded.
        clock.advance(1.0)
        assert client.portal is not None
        change = Change(ChangeKind.SESSION, hash_secret(value), until=clock.now() + 60)
        client.portal.call(auth.store.publish, change)
        assert wait_until(lambda: "its credential stands" in caplog.text, timeout=30)
        assert last_seen(client, auth, value) == opened_at
        clock.advance(IDLE_TTL)  # past the idle window, nothing used the session
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_text()
        assert closed.value.code == 4401
    # The open socket did not count as use: the session died with it.
    assert last_seen(client, auth, value) == opened_at
    assert client.portal is not None
    with pytest.raises(AuthenticationError):
        client.portal.call(auth.authenticate, value)


def test_a_use_of_the_session_elsewhere_moves_the_sockets_idle_deadline(
    served: tuple[TestClient, AuthState, FrozenClock], caplog: pytest.LogCaptureFixture
) -> None:
    client, auth, clock = served
    caplog.set_level(logging.DEBUG, logger="authstate.http")
    value = log_in(client, auth)
    with client.websocket_connect("/echo", headers=headers(auth, value)) as socket:
        socket.send_text("ping")
        assert socket.receive_text() == "ping"
        # A request with the cookie (as on another node) after one interval: recorded use.
        clock.advance(1.0)
        assert client.portal is not None
        client.portal.call(auth.authenticate, value)
        # The timer set for the first deadline fires, finds the session used, sets another.
        assert wait_until(lambda: "used since it opened" in caplog.text, timeout=30)
        socket.send_text("still open")
        assert socket.receive_text() == "still open"
        clock.advance(IDLE_TTL + 1)  # now nothing uses it any more
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_text()
        assert closed.value.code == 4401


def test_auth_ws_pushes_the_list_when_a_listed_session_idles_out(
    served: tuple[TestClient, AuthState, FrozenClock],
) -> None:
    client, auth, clock = served
    other = log_in(client, auth)
    clock.advance(1.0)
    mine = log_in(client, auth)
    with client.websocket_connect("/auth/ws", headers=headers(auth, mine)) as socket:
        assert socket.receive_json()["session"] is not None
        # ``other`` idles out 1 s before ``mine``: between the two, the list loses it.
        clock.advance(IDLE_TTL)
        pushed = socket.receive_json()
        assert pushed["type"] == "sessions"
        assert [s["current"] for s in pushed["sessions"]] == [True]
    assert client.portal is not None
    with pytest.raises(AuthenticationError):
        client.portal.call(auth.authenticate, other)
