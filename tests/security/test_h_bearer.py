"""B. The bearer transport (B01-B07): ``Authorization: Bearer`` beside the cookie, and
``POST /auth/token``. One credential per request, no CSRF hole through the header, the
token endpoint no weaker than login, and nothing of it while the transport is off.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from authstate.cookies import AUTH_COOKIE, REFRESH_COOKIE
from tests.security.harness import MODES, ORIGIN, PASSWORD, Node, note_secret, running

pytestmark = pytest.mark.anyio

BEARER = {"transports": "cookie,bearer"}


@pytest.fixture(params=MODES)
async def bearer_node(request: pytest.FixtureRequest) -> AsyncIterator[Node]:
    """The reference app in each mode with the bearer transport on."""
    async with running(request.param, **BEARER) as started:
        yield started


async def issue(node: Node, name: str = "mallory", **client: Any) -> dict[str, Any]:
    async with node.client(**client) as http:
        response = await http.post(
            "/auth/token", data={"grant_type": "password", "username": name, "password": PASSWORD}
        )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    note_secret(body["access_token"], body.get("refresh_token"))
    return body


def bearer(value: str) -> dict[str, str]:
    return {"authorization": f"Bearer {value}"}


# -- B01: one credential per request ------------------------------------------------------------
@pytest.mark.parametrize("route", [("GET", "/auth/me"), ("POST", "/auth/logout")])
async def test_b01_a_cookie_and_a_bearer_header_together_are_refused_and_change_nothing(
    bearer_node: Node, route: tuple[str, str]
) -> None:
    """B01: alice's header beside mallory's cookie (or the reverse) is a 400, whichever
    is valid: picking one would let whoever planted the other choose the account."""
    mallory = await bearer_node.login("mallory")
    alice = await issue(bearer_node, "alice")
    before = await bearer_node.snapshot()
    method, path = route
    cookies = [
        f"{AUTH_COOKIE}={mallory.auth}",
        f"{AUTH_COOKIE}=a; {AUTH_COOKIE}=b",  # a tossed, unreadable auth cookie still counts
        f"{REFRESH_COOKIE}={mallory.refresh or 'x' * 43}",
    ]
    for cookie in cookies:
        for header in (bearer(alice["access_token"]), bearer("not-a-token")):
            response = await bearer_node.raw(
                method, path, cookie=cookie, headers={**header, **mallory.headers}
            )
            assert response.status_code == 400, (cookie, response.text)
            assert "not both" in response.json()["detail"]
            assert "set-cookie" not in response.headers
    assert await bearer_node.snapshot() == before
    assert (await mallory.me()).status_code == 200
    await mallory.client.aclose()


# -- B02: the header is exempt from CSRF, the cookie is not -------------------------------------
async def test_b02_only_a_header_credential_skips_the_csrf_token(bearer_node: Node) -> None:
    """B02: a browser never attaches an Authorization header on its own, so a header
    request cannot be forged and needs no token; a cookie request keeps every CSRF rule,
    even when it adds a non-Bearer Authorization header (Basic is not ours, ignored)."""
    mallory = await bearer_node.login("mallory")
    before = await bearer_node.snapshot()
    forged = await bearer_node.raw(
        "POST",
        "/auth/logout-all",
        cookie=f"{AUTH_COOKIE}={mallory.auth}",
        headers={"authorization": "Basic bWFsbG9yeTp4", "origin": ORIGIN},
    )
    assert (forged.status_code, forged.json()["error"]) == (403, "csrf_failed")
    assert await bearer_node.snapshot() == before
    token = await issue(bearer_node, "alice")
    ended = await bearer_node.raw(
        "POST",
        "/auth/logout",
        headers={**bearer(token["access_token"]), "sec-fetch-site": "cross-site"},
    )
    assert ended.status_code == 204
    assert (
        await bearer_node.raw("GET", "/auth/me", headers=bearer(token["access_token"]))
    ).status_code == 401
    await mallory.client.aclose()


# -- B03, B04: the token endpoint is no oracle and no faster guessing path -----------------------
async def test_b03_the_token_endpoint_answers_alike_for_an_unknown_user_and_a_wrong_password(
    bearer_node: Node,
) -> None:
    """B03: the same status, body and headers (no cookie, no-store) either way."""
    answers = []
    async with bearer_node.client() as http:
        for name, password in (("alice", "wrong password!"), ("nobody-here", PASSWORD)):
            response = await http.post(
                "/auth/token",
                data={"grant_type": "password", "username": name, "password": password},
            )
            answers.append(
                (
                    response.status_code,
                    response.json(),
                    response.headers.get("cache-control"),
                    response.headers.get_list("set-cookie"),
                )
            )
    assert answers[0] == answers[1]
    assert answers[0][:3] == (
        400,
        {"error": "invalid_grant", "error_description": answers[0][1]["error_description"]},
        "no-store",
    )
    assert answers[0][3] == []


async def test_b04_token_guesses_share_the_login_throttle_per_account_and_per_address() -> None:
    """B04: failures through /auth/token count where /auth/login failures count: after the
    budget both answer 429 with Retry-After, per account and per client address."""
    async with running("session", login_max_attempts=3, **BEARER) as node:
        async with node.client(ip="203.0.113.9") as http:

            async def guess(name: str, password: str = "wrong password!") -> httpx.Response:
                return await http.post(
                    "/auth/token",
                    data={"grant_type": "password", "username": name, "password": password},
                )

            for _ in range(3):
                assert (await guess("alice")).status_code == 400
            throttled = await guess("alice", PASSWORD)  # even the right password
            assert throttled.status_code == 429
            assert int(throttled.headers["retry-after"]) >= 1
            login = await http.post("/auth/login", json={"username": "alice", "password": PASSWORD})
            assert login.status_code == 429
            # Per address: other accounts from the same address are throttled too.
            assert (await guess("mallory", PASSWORD)).status_code == 429
        # Another address still logs mallory in: the throttle is not a lockout for all.
        await issue(node, "mallory", ip="198.51.100.7")


# -- B05: off means off ---------------------------------------------------------------------------
async def test_b05_with_the_transport_off_the_header_is_never_read(node: Node) -> None:
    """B05: default transports: a valid access token in the header is anonymous, the
    token endpoint is a 404, and a cookie request is judged by the cookie alone."""
    issued = await node.auth.login(node.users["alice"], ["staff"])
    note_secret(issued.auth_value, issued.refresh_value)
    alone = await node.raw("GET", "/auth/me", headers=bearer(issued.auth_value))
    assert alone.status_code == 401
    endpoint = await node.raw(
        "POST",
        "/auth/token",
        content=f"grant_type=password&username=alice&password={PASSWORD}",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert (endpoint.status_code, endpoint.json()["error"]) == (404, "not_found")
    mallory = await node.login("mallory")
    both = await node.raw(
        "GET", "/auth/me", cookie=f"{AUTH_COOKIE}={mallory.auth}", headers=bearer(issued.auth_value)
    )
    assert both.status_code == 200
    assert both.json()["user"]["id"] == node.users["mallory"]
    await mallory.client.aclose()


# -- B06: strict reading of the header -----------------------------------------------------------
MALFORMED = [
    "Bearer",
    "Bearer ",
    "Bearer  {t}",
    "Bearer\t{t}",
    "Bearer {t} x",
    "Bearer {t},",
    'Bearer "{t}"',
    "Bearer {t}\u00e9",
    "Bearer " + "a" * 9000,
    "Bearer=x {t}",
]


@pytest.mark.parametrize("template", MALFORMED)
async def test_b06_a_malformed_bearer_header_is_anonymous_never_an_error(
    bearer_node: Node, template: str
) -> None:
    """B06: only `Bearer <b64token>` is read (any case of the scheme); anything else is the
    one 401, never a 5xx and never a credential."""
    token = (await issue(bearer_node, "alice"))["access_token"]
    value = template.replace("{t}", token)
    response = await bearer_node.raw(
        "GET", "/auth/me", headers={"authorization": value.encode("utf-8")}
    )
    assert response.status_code == 401, response.text
    assert response.json() == {"error": "unauthenticated", "detail": "authentication required"}


async def test_b06_two_authorization_headers_or_a_query_string_token_are_not_credentials(
    bearer_node: Node,
) -> None:
    token = (await issue(bearer_node, "alice"))["access_token"]
    status, _, _ = await _two_headers(bearer_node, token)
    assert status == 401
    query = await bearer_node.raw("GET", f"/auth/me?access_token={token}")
    assert query.status_code == 401
    lower = await bearer_node.raw("GET", "/auth/me", headers={"authorization": f"bearer {token}"})
    assert lower.status_code == 200  # the scheme is case-insensitive (RFC 9110 §11.1)


async def _two_headers(node: Node, token: str) -> tuple[int, Any, Any]:
    from tests.security.harness import asgi_request

    auth = f"Bearer {token}".encode()
    return await asgi_request(
        node.app, "GET", "/auth/me", [(b"authorization", auth), (b"authorization", auth)]
    )


# -- B07: a refresh token is not an access credential ---------------------------------------------
async def test_b07_a_refresh_token_in_the_header_is_refused() -> None:
    """B07: the hybrid refresh token authenticates nothing but a refresh grant."""
    async with running("hybrid", **BEARER) as node:
        tokens = await issue(node, "alice")
        response = await node.raw("GET", "/auth/me", headers=bearer(tokens["refresh_token"]))
        assert response.status_code == 401
        ok = await node.raw("GET", "/auth/me", headers=bearer(tokens["access_token"]))
        assert ok.status_code == 200
