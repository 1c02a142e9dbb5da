"""WebSocket routes behind ``AuthMiddleware``: ``require()`` on FastAPI and Starlette routes,
the Origin check, and sockets closed when their credential is revoked or expires."""

# No ``from __future__ import annotations``: FastAPI reads the route's Annotated parameter
# at definition time, and it names a local ``auth``.
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from authstate import AuthState
from authstate._time import FrozenClock
from authstate.principal import Principal
from authstate.settings import Settings

OWN_ORIGIN = "http://testserver"


def make_auth(mode: str = "hybrid", clock: FrozenClock | None = None) -> AuthState:
    return AuthState(Settings.from_env({}, mode=mode, store="memory://"), clock=clock)


def fastapi_app(auth: AuthState) -> FastAPI:
    app = FastAPI()
    app.add_middleware(auth.middleware().cls, auth=auth)
    staff = Annotated[Principal, Depends(auth.require(role="staff"))]

    @app.websocket("/ws")
    async def staff_socket(websocket: WebSocket, principal: staff) -> None:
        await websocket.accept()
        await websocket.send_json({"user": principal.user_id})
        await websocket.receive()  # until the client or authstate ends it

    return app


def starlette_app(auth: AuthState) -> Starlette:
    async def socket(websocket: WebSocket) -> None:
        principal = await auth.require()(websocket)
        await websocket.accept()
        await websocket.send_json({"user": principal.user_id})
        await websocket.receive()

    return Starlette(routes=[WebSocketRoute("/ws", socket)], middleware=[auth.middleware()])


@pytest.fixture(params=["fastapi", "starlette"])
def served(request: pytest.FixtureRequest) -> Iterator[tuple[TestClient, AuthState]]:
    auth = make_auth()
    app = fastapi_app(auth) if request.param == "fastapi" else starlette_app(auth)
    with TestClient(app) as client:
        yield client, auth


def cookie_for(client: TestClient, auth: AuthState, roles: tuple[str, ...] = ("staff",)) -> str:
    assert client.portal is not None
    issued = client.portal.call(auth.login, "user-1", roles)
    return f"{auth.cookie_policy.auth_cookie_name}={issued.auth_value}"


def connect(client: TestClient, cookie: str | None, origin: str | None = OWN_ORIGIN) -> Any:
    headers = {}
    if cookie is not None:
        headers["cookie"] = cookie
    if origin is not None:
        headers["origin"] = origin
    return client.websocket_connect("/ws", headers=headers)


def test_require_gives_a_websocket_route_the_principal_of_the_cookie(
    served: tuple[TestClient, AuthState],
) -> None:
    client, auth = served
    with connect(client, cookie_for(client, auth)) as socket:
        assert socket.receive_json() == {"user": "user-1"}


def test_require_refuses_a_handshake_without_a_valid_cookie_with_401(
    served: tuple[TestClient, AuthState],
) -> None:
    client, auth = served
    for cookie in (None, f"{auth.cookie_policy.auth_cookie_name}=forged"):
        with pytest.raises(WebSocketDenialResponse) as refused, connect(client, cookie):
            pass
        assert refused.value.status_code == 401


def test_require_with_a_role_refuses_a_user_without_it_with_403() -> None:
    auth = make_auth()
    with TestClient(fastapi_app(auth)) as client:
        cookie = cookie_for(client, auth, roles=())
        with pytest.raises(WebSocketDenialResponse) as refused, connect(client, cookie):
            pass
        assert refused.value.status_code == 403


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://testserver:8080"])
def test_a_cookie_handshake_from_a_foreign_origin_is_refused_with_403(
    served: tuple[TestClient, AuthState], origin: str
) -> None:
    client, auth = served
    with (
        pytest.raises(WebSocketDenialResponse) as refused,
        connect(client, cookie_for(client, auth), origin=origin),
    ):
        pass
    assert refused.value.status_code == 403
    assert refused.value.json()["error"] == "csrf_failed"


def test_a_cookie_handshake_without_origin_is_a_non_browser_client_and_accepted(
    served: tuple[TestClient, AuthState],
) -> None:
    client, auth = served
    with connect(client, cookie_for(client, auth), origin=None) as socket:
        assert socket.receive_json() == {"user": "user-1"}


@pytest.mark.parametrize("mode", ["stateless", "session", "hybrid"])
def test_logout_everywhere_closes_an_open_socket_with_4401(mode: str) -> None:
    auth = make_auth(mode)
    with TestClient(starlette_app(auth)) as client:
        cookie = cookie_for(client, auth)
        with connect(client, cookie) as socket:
            socket.receive_json()
            assert client.portal is not None
            client.portal.call(auth.logout_everywhere, "user-1")
            with pytest.raises(WebSocketDisconnect) as closed:
                socket.receive_json()
            assert closed.value.code == 4401


def test_a_socket_is_closed_with_4401_when_its_access_token_expires() -> None:
    clock = FrozenClock()
    auth = make_auth("hybrid", clock)
    with TestClient(starlette_app(auth)) as client:
        cookie = cookie_for(client, auth)
        # Just before the token's exp: the socket opens, then its expiry timer fires.
        clock.advance(auth.settings.access_ttl_seconds - 0.2)
        with connect(client, cookie) as socket:
            socket.receive_json()
            with pytest.raises(WebSocketDisconnect) as closed:
                socket.receive_json()
            assert closed.value.code == 4401


@pytest.mark.anyio
async def test_without_the_denial_extension_a_refusal_is_a_close_code_before_accept() -> None:
    """Servers without ``websocket.http.response`` get ``websocket.close`` (4401/4403)."""
    auth = make_auth()
    app = starlette_app(auth)
    await auth.start()
    try:
        issued = await auth.login("user-1", ("staff",))
        cookie = f"{auth.cookie_policy.auth_cookie_name}={issued.auth_value}"
        for headers, expected in (
            ([], 4401),
            ([(b"cookie", cookie.encode()), (b"origin", b"https://evil.example")], 4403),
        ):
            sent: list[dict[str, Any]] = []

            async def receive() -> dict[str, Any]:
                return {"type": "websocket.connect"}

            async def send(message: dict[str, Any], sent: list[dict[str, Any]] = sent) -> None:
                sent.append(message)

            scope = {
                "type": "websocket",
                "path": "/ws",
                "raw_path": b"/ws",
                "root_path": "",
                "scheme": "ws",
                "query_string": b"",
                "headers": [(b"host", b"testserver"), *headers],
                "client": ("127.0.0.1", 1),
                "server": ("testserver", 80),
                "subprotocols": [],
                "state": {},
            }
            await app(scope, receive, send)
            assert [m["type"] for m in sent] == ["websocket.close"]
            assert sent[0]["code"] == expected
    finally:
        await auth.stop()


def test_sockets_are_still_watched_after_the_app_restarted_its_auth_state() -> None:
    # A secret of its own: the memory store outlives the restart, sealed keys and all.
    settings = Settings.from_env({}, mode="session", store="memory://", secret="s" * 43)
    auth = AuthState(settings)
    app = starlette_app(auth)
    for _ in range(2):  # a second lifespan: stop, then start on the same AuthState
        with TestClient(app) as client, connect(client, cookie_for(client, auth)) as socket:
            socket.receive_json()
            assert client.portal is not None
            client.portal.call(auth.logout_everywhere, "user-1")
            with pytest.raises(WebSocketDisconnect) as closed:
                socket.receive_json()
            assert closed.value.code == 4401


def bearer_app(transports: str = "cookie,bearer") -> tuple[Starlette, AuthState]:
    settings = Settings.from_env({}, mode="hybrid", store="memory://", transports=transports)
    auth = AuthState(settings)
    return starlette_app(auth), auth


def test_a_bearer_handshake_is_authenticated_and_needs_no_origin_check() -> None:
    app, auth = bearer_app()
    with TestClient(app) as client:
        value = cookie_for(client, auth).split("=", 1)[1]
        # A foreign Origin does not matter: no page can make a browser send the header.
        headers = {"authorization": f"Bearer {value}", "origin": "https://evil.example"}
        with client.websocket_connect("/ws", headers=headers) as socket:
            assert socket.receive_json() == {"user": "user-1"}
            assert client.portal is not None
            client.portal.call(auth.logout_everywhere, "user-1")
            with pytest.raises(WebSocketDisconnect) as closed:
                socket.receive_json()
            assert closed.value.code == 4401


def test_a_handshake_with_a_cookie_and_a_bearer_header_is_refused_with_400() -> None:
    app, auth = bearer_app()
    with TestClient(app) as client:
        cookie = cookie_for(client, auth)
        headers = {
            "cookie": cookie,
            "authorization": f"Bearer {cookie.split('=', 1)[1]}",
            "origin": OWN_ORIGIN,
        }
        with (
            pytest.raises(WebSocketDenialResponse) as refused,
            client.websocket_connect("/ws", headers=headers),
        ):
            pass
        assert refused.value.status_code == 400


def test_a_bearer_header_is_ignored_while_the_transport_is_off() -> None:
    app, auth = bearer_app(transports="cookie")
    with TestClient(app) as client:
        value = cookie_for(client, auth).split("=", 1)[1]
        with (
            pytest.raises(WebSocketDenialResponse) as refused,
            client.websocket_connect("/ws", headers={"authorization": f"Bearer {value}"}),
        ):
            pass
        assert refused.value.status_code == 401


@pytest.mark.parametrize("mode", ["stateless", "session", "hybrid"])
def test_a_roles_change_closes_the_socket_so_the_client_reconnects_under_the_new_roles(
    mode: str,
) -> None:
    auth = make_auth(mode)
    with TestClient(starlette_app(auth)) as client, connect(client, cookie_for(client, auth)) as ws:
        ws.receive_json()
        assert client.portal is not None
        client.portal.call(auth.set_roles, "user-1", ["viewer"])
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 4401
