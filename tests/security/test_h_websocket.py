"""H (WebSocket). Cross-site WebSocket hijacking and unauthenticated handshakes: a WebSocket
handshake carries the auth cookie like any request, so it gets the CSRF rules that a
handshake can carry (Origin and Fetch Metadata; it cannot carry a token), and a socket
never outlives its credential.

WS1 cross-site hijacking: the victim's cookie from a foreign page -> 403, no socket.
WS2 unauthenticated handshake: no, forged, expired or revoked cookie -> 401, nothing sent.
WS3 a revoked credential closes the open socket (4401) and the app hears a disconnect.
WS4 a handshake for a host the server does not answer for -> 400 (DNS rebinding).
WS5 with the bearer transport: a cookie and a Bearer header on one handshake -> 400.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

from authstate import AuthState, FrozenClock, Settings
from authstate.cookies import AUTH_COOKIE
from authstate.server.app import create_app
from tests.security.harness import MODES, PASSWORD, fast_hasher, note_secret

OWN = "http://testserver"  # the page origin of ws://testserver


@dataclass
class WsNode:
    auth: AuthState
    client: TestClient
    clock: FrozenClock

    def login(self, name: str = "mallory") -> str:
        """The Cookie header of a fresh login of ``name``."""
        response = self.client.post("/auth/login", json={"username": name, "password": PASSWORD})
        assert response.status_code == 200, response.text
        value = response.cookies.get(AUTH_COOKIE) or _set_cookie(response, AUTH_COOKIE)
        note_secret(value)
        return f"{AUTH_COOKIE}={value}"

    def post(self, path: str, cookie: str) -> int:
        csrf = self.client.get("/auth/csrf", headers={"cookie": cookie}).json()["csrf_token"]
        headers = {"cookie": cookie, "x-csrf-token": csrf}
        return self.client.post(path, headers=headers).status_code

    def refused(self, headers: dict[str, str]) -> WebSocketDenialResponse:
        with (
            pytest.raises(WebSocketDenialResponse) as refused,
            self.client.websocket_connect("/auth/ws", headers=headers),
        ):
            pass
        return refused.value


def _set_cookie(response: Any, name: str) -> str:
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(name + "="):
            return str(header.split("=", 1)[1].split(";", 1)[0])
    raise AssertionError(f"no {name} cookie")


@pytest.fixture(params=MODES)
def ws_node(request: pytest.FixtureRequest) -> Iterator[WsNode]:
    settings = Settings.from_env(
        {}, mode=request.param, store="memory://", allowed_hosts="testserver"
    )
    clock = FrozenClock()
    auth = AuthState(settings, clock=clock, password_hasher=fast_hasher())
    with TestClient(create_app(auth=auth), base_url="https://testserver") as client:
        assert client.portal is not None
        client.portal.call(auth.accounts.add_user, "mallory", PASSWORD, ("staff",))
        yield WsNode(auth, client, clock)


@pytest.mark.parametrize(
    "origin_headers",
    [
        {"origin": "https://evil.example"},
        {"origin": "null"},
        {"origin": "http://testserver.evil.example"},
        {"origin": "https://testserver"},  # another scheme is another origin
        {"origin": "http://testserver:8080"},
        {"origin": OWN, "sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},  # a sibling host that hides its Origin
    ],
)
def test_ws1_a_handshake_with_the_victims_cookie_from_a_foreign_page_is_refused(
    ws_node: WsNode, origin_headers: dict[str, str]
) -> None:
    cookie = ws_node.login()
    refused = ws_node.refused({"cookie": cookie, **origin_headers})
    assert refused.status_code == 403
    assert refused.json()["error"] == "csrf_failed"
    # The same cookie from the server's own page opens it: the refusal was the Origin's.
    with ws_node.client.websocket_connect("/auth/ws", headers={"cookie": cookie, "origin": OWN}):
        pass


def test_ws2_a_handshake_without_a_valid_credential_is_refused_before_accept(
    ws_node: WsNode,
) -> None:
    assert ws_node.refused({"origin": OWN}).status_code == 401
    forged = f"{AUTH_COOKIE}={'A' * 43}"
    assert ws_node.refused({"cookie": forged, "origin": OWN}).status_code == 401
    revoked = ws_node.login()
    assert ws_node.post("/auth/logout", revoked) == 204
    assert ws_node.refused({"cookie": revoked, "origin": OWN}).status_code == 401
    expired = ws_node.login()
    ws_node.clock.advance(ws_node.auth.settings.session_ttl_seconds + 1)
    ws_node.clock.advance(ws_node.auth.settings.refresh_ttl_seconds + 1)
    refused = ws_node.refused({"cookie": expired, "origin": OWN})
    assert refused.status_code == 401
    assert refused.json() == {"error": "unauthenticated", "detail": "authentication required"}


def test_ws3_revoking_the_credential_closes_the_open_socket_with_4401(ws_node: WsNode) -> None:
    cookie = ws_node.login()
    with ws_node.client.websocket_connect(
        "/auth/ws", headers={"cookie": cookie, "origin": OWN}
    ) as socket:
        socket.receive_json()
        assert ws_node.post("/auth/logout-all", cookie) == 204
        with pytest.raises(WebSocketDisconnect) as closed:
            while True:
                socket.receive_json()
        assert closed.value.code == 4401


def test_ws4_a_handshake_for_a_foreign_host_is_refused(ws_node: WsNode) -> None:
    cookie = ws_node.login()
    headers = {"cookie": cookie, "host": "rebound.evil.example", "origin": OWN}
    refused = ws_node.refused(headers)
    assert refused.status_code == 400


def test_ws5_a_handshake_with_a_cookie_and_a_bearer_header_is_refused() -> None:
    """With the bearer transport on, a handshake carrying both credentials is 400: picking
    one would let whoever planted the other choose the account."""
    settings = Settings.from_env(
        {}, mode="hybrid", store="memory://", allowed_hosts="testserver", transports="cookie,bearer"
    )
    auth = AuthState(settings, clock=FrozenClock(), password_hasher=fast_hasher())
    with TestClient(create_app(auth=auth), base_url="https://testserver") as client:
        assert client.portal is not None
        client.portal.call(auth.accounts.add_user, "mallory", PASSWORD, ("staff",))
        node = WsNode(auth, client, FrozenClock())
        cookie = node.login()
        bearer = f"Bearer {cookie.split('=', 1)[1]}"
        for headers in (
            {"cookie": cookie, "authorization": bearer, "origin": OWN},
            {"cookie": f"{AUTH_COOKIE}={'A' * 43}", "authorization": bearer},
        ):
            refused = node.refused(headers)
            assert refused.status_code == 400
            assert refused.json()["error"] == "bad_request"
