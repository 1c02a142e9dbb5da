"""The pure-ASGI middleware: exact cookie reading, CSRF on unsafe requests, auth headers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from authstate import AuthState
from authstate.asgi.middleware import get_principal
from authstate.cookies import AUTH_COOKIE
from authstate.settings import Settings

pytestmark = pytest.mark.anyio

BASE = "https://testserver"


async def whoami(request: Request) -> Response:
    principal = get_principal(request)
    return JSONResponse({"user": principal.user_id if principal else None})


async def change(request: Request) -> Response:
    principal = get_principal(request)
    if principal is None:
        return JSONResponse({"error": "unauthenticated"}, 401)
    return JSONResponse({"changed_by": principal.user_id})


@pytest.fixture(params=["stateless", "session", "hybrid"])
async def app_and_auth(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[Starlette, AuthState]]:
    auth = AuthState(Settings.from_env({}, mode=request.param, store="memory://"))
    app = Starlette(
        routes=[
            Route("/whoami", whoami),
            Route("/change", change, methods=["POST"]),
            Mount("/auth", auth.routes()),
        ],
        middleware=[auth.middleware()],
    )
    await auth.start()
    yield app, auth
    await auth.stop()


async def _client_for(app: Starlette, auth: AuthState) -> tuple[httpx.AsyncClient, str]:
    issued = await auth.login("u1", ["staff"])
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
    client.cookies.set(AUTH_COOKIE, issued.auth_value)
    return client, auth.csrf_token(issued.principal.binding)


async def test_the_app_sees_the_principal_of_a_valid_cookie(
    app_and_auth: tuple[Starlette, AuthState],
) -> None:
    client, _ = await _client_for(*app_and_auth)
    async with client:
        response = await client.get("/whoami")
    assert response.json() == {"user": "u1"}
    assert "Cookie" in response.headers["vary"]


async def test_a_request_with_the_auth_cookie_twice_is_anonymous(
    app_and_auth: tuple[Starlette, AuthState],
) -> None:
    app, auth = app_and_auth
    issued = await auth.login("u1", [])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        cookie = f"{AUTH_COOKIE}={issued.auth_value}; {AUTH_COOKIE}={issued.auth_value}"
        response = await client.get("/auth/me", headers={"cookie": cookie})
    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"


async def test_the_credential_is_never_read_from_the_query_string_or_a_lookalike_name(
    app_and_auth: tuple[Starlette, AuthState],
) -> None:
    app, auth = app_and_auth
    issued = await auth.login("u1", [])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        by_query = await client.get("/whoami", params={AUTH_COOKIE: issued.auth_value})
        lookalike = await client.get(
            "/whoami", headers={"cookie": f"__host-authstate={issued.auth_value}"}
        )
    assert by_query.json() == {"user": None}
    assert lookalike.json() == {"user": None}


async def test_garbage_cookies_are_anonymous_not_errors(
    app_and_auth: tuple[Starlette, AuthState],
) -> None:
    app, _ = app_and_auth
    values = ["", "a.b.c", "%%%", "e30." * 50, "\u00ff" * 10, "A" * 4000, "x=y=z"]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        for value in values:
            raw = f"{AUTH_COOKIE}={value}".encode()
            response = await client.get("/auth/me", headers={"cookie": raw})
            assert response.status_code == 401, value


async def test_an_unsafe_request_without_the_csrf_token_is_refused(
    app_and_auth: tuple[Starlette, AuthState],
) -> None:
    client, _ = await _client_for(*app_and_auth)
    async with client:
        response = await client.post("/change")
    assert response.status_code == 403
    assert response.json()["error"] == "csrf_failed"


async def test_the_csrf_token_in_the_header_or_the_form_is_accepted(
    app_and_auth: tuple[Starlette, AuthState],
) -> None:
    client, token = await _client_for(*app_and_auth)
    async with client:
        by_header = await client.post("/change", headers={"x-csrf-token": token})
        by_form = await client.post("/change", data={"csrf_token": token, "x": "1"})
    assert by_header.json() == {"changed_by": "u1"}
    assert by_form.json() == {"changed_by": "u1"}


async def test_a_csrf_token_of_another_session_is_refused(
    app_and_auth: tuple[Starlette, AuthState],
) -> None:
    app, auth = app_and_auth
    client, _ = await _client_for(app, auth)
    other = await auth.login("u2", [])
    async with client:
        response = await client.post(
            "/change", headers={"x-csrf-token": auth.csrf_token(other.principal.binding)}
        )
    assert response.status_code == 403


async def test_cross_site_and_foreign_origin_requests_are_refused_even_with_a_token(
    app_and_auth: tuple[Starlette, AuthState],
) -> None:
    client, token = await _client_for(*app_and_auth)
    async with client:
        cross = await client.post(
            "/change", headers={"x-csrf-token": token, "sec-fetch-site": "cross-site"}
        )
        foreign = await client.post(
            "/change", headers={"x-csrf-token": token, "origin": "https://testserver.evil.example"}
        )
        same = await client.post(
            "/change",
            headers={"x-csrf-token": token, "origin": BASE, "sec-fetch-site": "same-origin"},
        )
    assert cross.status_code == 403
    assert foreign.status_code == 403
    assert same.status_code == 200


async def test_get_never_changes_state_logout_by_get_is_405(
    app_and_auth: tuple[Starlette, AuthState],
) -> None:
    client, _ = await _client_for(*app_and_auth)
    async with client:
        response = await client.get("/auth/logout")
        still = await client.get("/auth/me")
    assert response.status_code == 405
    assert still.status_code == 200


async def test_the_app_lifespan_starts_and_stops_authstate() -> None:
    auth = AuthState(Settings.from_env({}, mode="session", store="memory://"))
    app = Starlette(routes=[Route("/whoami", whoami)], middleware=[auth.middleware()])
    from starlette.testclient import TestClient

    with TestClient(app, base_url=BASE):
        assert auth.started
    assert not auth.started


@pytest.mark.parametrize(
    ("app_vary", "expected"),
    [
        (["Accept-Encoding"], ["Accept-Encoding, Cookie"]),
        (["accept-encoding, COOKIE"], ["accept-encoding, COOKIE"]),
        (["Accept-Encoding", "cookie"], ["Accept-Encoding", "cookie"]),
        (["*"], ["*"]),
        ([], ["Cookie"]),
    ],
)
async def test_vary_cookie_is_merged_into_the_apps_own_vary(
    app_vary: list[str], expected: list[str]
) -> None:
    """A response that varies by something else (compression, language) still tells caches
    it varies by Cookie too, without naming Cookie twice (red team / issue 11 item 8)."""

    async def page(request: Request) -> Response:
        response = Response("hello")
        for value in app_vary:
            response.headers.append("Vary", value)
        return response

    auth = AuthState(Settings.from_env({}, mode="session", store="memory://"))
    app = Starlette(routes=[Route("/page", page)], middleware=[auth.middleware()])
    async with auth:
        client, _ = await _client_for(app, auth)
        async with client:
            response = await client.get("/page")
    assert response.headers.get_list("vary") == expected


@pytest.mark.parametrize("vary", [None, b"Accept-Encoding"])
@pytest.mark.parametrize("kind", ["list", "tuple", "generator"])
async def test_vary_cookie_whatever_iterable_the_app_sends_its_headers_in(
    kind: str, vary: bytes | None
) -> None:
    """ASGI allows any iterable of header pairs; the app's own list is never changed (an
    app may send one list with every response)."""
    from authstate.asgi.middleware import AuthMiddleware

    own = [(b"content-type", b"text/plain")] + ([(b"vary", vary)] if vary else [])
    before = list(own)

    async def raw_app(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
        headers = {"list": own, "tuple": tuple(own), "generator": (h for h in own)}[kind]
        await send({"type": "http.response.start", "status": 200, "headers": headers})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"hi"})  # type: ignore[operator]

    auth = AuthState(Settings.from_env({}, mode="session", store="memory://"))
    app = AuthMiddleware(raw_app, auth=auth)  # type: ignore[arg-type]
    async with auth:
        issued = await auth.login("u1", ["staff"])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            client.cookies.set(AUTH_COOKIE, issued.auth_value)
            response = await client.get("/")
    expected = ["Cookie"] if vary is None else ["Accept-Encoding, Cookie"]
    assert response.headers.get_list("vary") == expected
    assert response.headers["content-type"] == "text/plain" and response.text == "hi"
    assert own == before
