"""Session data (SD1-SD5): ``GET``/``PATCH /auth/session/data``, the one HTTP surface of a
session's server-side data. Every refusal leaves the data, and the rest of the store, as it
was; the data never travels in a cookie or token; one session can reach only its own data.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from authstate.cookies import AUTH_COOKIE, REFRESH_COOKIE
from tests.security.harness import Node, Session, set_cookies

pytestmark = pytest.mark.anyio

DATA = "/auth/session/data"
MARKER = "sd-marker-7f3a"


async def stored(session: Session) -> dict[str, Any]:
    response = await session.client.get(DATA)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def patch(session: Session, body: bytes | Any, **headers: str) -> httpx.Response:
    sent = {"x-csrf-token": session.csrf, "content-type": "application/json", **headers}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await session.client.patch(DATA, content=content, headers=sent)


async def assert_refused(
    node: Node, session: Session, status: int, error: str, body: bytes | Any, **headers: str
) -> None:
    before_data, before = await stored(session), await node.snapshot()
    response = await patch(session, body, **headers)
    assert response.status_code == status, response.text
    if response.headers["content-type"].startswith("application/json"):
        assert response.json()["error"] == error
    else:  # a form post is answered with the page again, the status as for JSON
        assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert not set(set_cookies(response)) & {AUTH_COOKIE, REFRESH_COOKIE}
    assert await stored(session) == before_data
    assert await node.snapshot() == before


# -- SD1 -----------------------------------------------------------------------------------------
async def test_a_patch_without_a_valid_csrf_proof_changes_nothing(stateful_node: Node) -> None:
    """SD1: PATCH is an unsafe cookie request: no token, another session's token, a
    cross-site fetch or a foreign Origin are 403 and the data stays."""
    alice = await stateful_node.login("alice")
    mallory = await stateful_node.login("mallory")
    assert (await patch(alice, {"keep": 1})).status_code == 200
    no_token = {"x-csrf-token": ""}
    for headers in (
        no_token,
        {"x-csrf-token": mallory.csrf},
        {"sec-fetch-site": "cross-site"},
        {"origin": "https://evil.test"},
    ):
        await assert_refused(stateful_node, alice, 403, "csrf_failed", {"evil": 1}, **headers)
    assert await stored(alice) == {"keep": 1}


# -- SD2 -----------------------------------------------------------------------------------------
async def test_over_the_cap_is_413_and_nothing_is_written(stateful_node: Node) -> None:
    """SD2: a result over AUTHSTATE_SESSION_DATA_MAX_BYTES (16 KiB) is 413
    session_data_too_large, including when it is the sum of small updates; a body over
    twice the cap is 413 payload_too_large before it is parsed. Nothing is written."""
    alice = await stateful_node.login("alice")
    assert (await patch(alice, {"a": "x" * 9000})).status_code == 200
    node = stateful_node
    await assert_refused(node, alice, 413, "session_data_too_large", {"b": "y" * 9000})
    await assert_refused(node, alice, 413, "session_data_too_large", {"c": "z" * 17_000})
    await assert_refused(node, alice, 413, "payload_too_large", {"d": "w" * 40_000})
    # Deleting and replacing in one update is measured after both: this one fits.
    assert (await patch(alice, {"a": None, "b": "y" * 9000})).status_code == 200
    assert await stored(alice) == {"b": "y" * 9000}


# -- SD3 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"[1, 2]", "application/json"),
        (b'"text"', "application/json"),
        (b'{"a": 1, "a": 2}', "application/json"),
        (b'{"a": NaN}', "application/json"),
        (b'{"a": "\\ud800"}', "application/json"),
        (b'{"a": ' + b"[" * 100 + b"]" * 100 + b"}", "application/json"),
        (b"\xff\xfe{}", "application/json"),
        (b'{"a": 1}', "text/plain"),
        (b"a=1", "application/x-www-form-urlencoded"),
    ],
    ids=["array", "string", "duplicate", "nan", "surrogate", "deep", "utf16", "text", "form"],
)
async def test_a_body_that_is_not_a_json_object_is_400(
    stateful_node: Node, body: bytes, content_type: str
) -> None:
    """SD3: only a strict JSON object, declared as JSON (text/plain is what a cross-site
    simple request sends), is an update; anything else is 400 and writes nothing."""
    alice = await stateful_node.login("alice")
    assert (await patch(alice, {"keep": True})).status_code == 200
    await assert_refused(
        stateful_node, alice, 400, "bad_request", body, **{"content-type": content_type}
    )


# -- SD4 -----------------------------------------------------------------------------------------
async def test_data_is_never_in_a_cookie_or_token_and_only_its_session_sees_it(
    stateful_node: Node,
) -> None:
    """SD4: the data stays on the server (no Set-Cookie, not in the JWT or any cookie,
    also after a refresh rotation); the route has no session parameter, so another user's
    or another device's session reads its own (empty) data."""
    alice = await stateful_node.login("alice")
    response = await patch(alice, {"secret": MARKER})
    assert response.status_code == 200 and "set-cookie" not in response.headers
    if stateful_node.mode == "hybrid":
        assert (await alice.refresh_now()).status_code == 200
        assert await stored(alice) == {"secret": MARKER}
        assert MARKER not in json.dumps(alice.token_claims())
    for value in alice.cookies.values():
        padded = value + "=" * (-len(value) % 4)
        decoded = b"".join(
            base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
            for part in padded.split(".")
            if part.strip("=")
        )
        assert MARKER.encode() not in decoded and MARKER not in value
    other_device = await stateful_node.login("alice")
    mallory = await stateful_node.login("mallory")
    assert await stored(other_device) == {}
    assert await stored(mallory) == {}
    forged = await mallory.client.get(DATA, params={"id": alice.cookies[AUTH_COOKIE]})
    assert forged.json() == {"data": {}}


# -- SD5 -----------------------------------------------------------------------------------------
async def test_stateless_mode_has_no_session_data(node: Node) -> None:
    """SD5: a stateless token has no server-side session: 404 for GET and PATCH, nothing
    written; without a credential it is 401 in every mode."""
    anonymous = await node.client().get(DATA)
    assert anonymous.status_code == 401
    if node.mode != "stateless":
        return
    alice = await node.login("alice")
    assert (await alice.client.get(DATA)).status_code == 404
    await assert_refused_stateless(node, alice)


async def assert_refused_stateless(node: Node, alice: Session) -> None:
    before = await node.snapshot()
    response = await patch(alice, {"a": 1})
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    assert await node.snapshot() == before
