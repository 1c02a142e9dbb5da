"""examples/fastapi_websocket.py: a WebSocket route behind the auth cookie, closed on logout."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import ModuleType

import pytest
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

from tests.examples.conftest import BASE, PASSWORD


@pytest.fixture
def client(example: Callable[[str], ModuleType]) -> Iterator[TestClient]:
    module = example("fastapi_websocket")
    with TestClient(module.app, base_url=BASE) as client:
        assert client.portal is not None
        client.portal.call(module.auth.accounts.add_user, "alice", PASSWORD, ())
        yield client


def login(client: TestClient) -> tuple[str, str]:
    """(Cookie header, CSRF token) of alice."""
    response = client.post("/auth/login", json={"username": "alice", "password": PASSWORD})
    assert response.status_code == 200, response.text
    cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    return cookie, response.json()["csrf_token"]


def test_a_signed_in_browser_gets_the_feed_and_logout_closes_it_with_4401(
    client: TestClient,
) -> None:
    cookie, csrf = login(client)
    headers = {"cookie": cookie, "origin": "http://testserver"}
    with client.websocket_connect("/orders/live", headers=headers) as socket:
        assert socket.receive_json()["orders"] == ["#1001"]
        socket.send_text("hello")
        assert socket.receive_json() == {"echo": "hello"}
        response = client.post("/auth/logout", headers={"x-csrf-token": csrf})
        assert response.status_code == 204
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()
        assert closed.value.code == 4401


def test_anonymous_and_cross_site_handshakes_are_refused(client: TestClient) -> None:
    anonymous = client.websocket_connect("/orders/live")
    with pytest.raises(WebSocketDenialResponse) as refused, anonymous:
        pass
    assert refused.value.status_code == 401
    cookie, _ = login(client)
    headers = {"cookie": cookie, "origin": "https://evil.example"}
    with (
        pytest.raises(WebSocketDenialResponse) as refused,
        client.websocket_connect("/orders/live", headers=headers),
    ):
        pass
    assert refused.value.status_code == 403
