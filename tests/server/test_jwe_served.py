"""Encrypted tokens through a real ``authstate serve`` with ``AUTHSTATE_TOKEN_FORMAT=jwe``:
the auth cookie is an opaque compact JWE, and login, ``/auth/me``, refresh, logout and
revocation work as with signed tokens (across nodes: tests/multinode/test_jwe_nodes.py)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from authstate.cookies import AUTH_COOKIE, REFRESH_COOKIE
from tests.cli.serve_process import Served, clean_env, serve
from tests.multinode.nodes import add_user, node_env

pytestmark = pytest.mark.slow

JWE = {"AUTHSTATE_TOKEN_FORMAT": "jwe"}


@pytest.fixture(scope="module", params=["stateless", "hybrid"])
def node(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    tmp_path: Path = tmp_path_factory.mktemp("jwe")
    args = ("--mode", request.param, "--store", "memory://", "--demo")
    with serve(tmp_path, *args, env=clean_env(**JWE)) as served:
        yield served


def login(served: Served, name: str = "alice") -> tuple[dict[str, str], str]:
    password = served.demo_passwords()[name]
    response = httpx.post(
        f"{served.url}/auth/login", json={"username": name, "password": password}, timeout=10
    )
    assert response.status_code == 200, response.text
    return cookies_of(response), response.json()["csrf_token"]


def cookies_of(response: httpx.Response) -> dict[str, str]:
    result = {}
    for header in response.headers.get_list("set-cookie"):
        name, rest = header.split("=", 1)
        result[name] = rest.split(";", 1)[0]
    return result


def me(served: Served, token: str) -> httpx.Response:
    return httpx.get(
        f"{served.url}/auth/me", headers={"cookie": f"{AUTH_COOKIE}={token}"}, timeout=10
    )


def decoded(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def test_the_auth_cookie_is_an_opaque_jwe(node: Served) -> None:
    cookies, _ = login(node)
    token = cookies[AUTH_COOKIE]
    parts = token.split(".")
    assert len(parts) == 5 and parts[1] == ""
    header = json.loads(decoded(parts[0]))
    assert (header["alg"], header["enc"], header["typ"]) == ("dir", "A256GCM", "at+jwt")
    assert set(header) == {"alg", "enc", "kid", "typ"}
    # No readable payload: nothing but the header is base64 JSON, the user appears nowhere.
    assert not any(part.startswith("eyJ") for part in parts[1:])
    for part in parts[2:]:
        assert b"alice" not in decoded(part) and b'"sub"' not in decoded(part)
    assert me(node, token).json()["user"]["username"] == "alice"


def test_the_jwks_publishes_no_content_key(node: Served) -> None:
    keys = httpx.get(f"{node.url}/.well-known/jwks.json", timeout=10).json()["keys"]
    assert keys, "the signing keys are still published"
    assert all(key["kty"] in ("OKP", "EC") and "k" not in key and "d" not in key for key in keys)


def test_every_bad_token_gets_one_identical_401(node: Served) -> None:
    cookies, _ = login(node)
    parts = cookies[AUTH_COOKIE].split(".")
    tampered_tag = [*parts[:4], ("B" if parts[4][0] == "A" else "A") + parts[4][1:]]
    with_key = [parts[0], "AAAA", *parts[2:]]
    alg_none = base64.urlsafe_b64encode(b'{"alg":"none","enc":"A256GCM"}').decode().rstrip("=")
    jws = "eyJhbGciOiJFZERTQSIsInR5cCI6ImF0K2p3dCIsImtpZCI6IngifQ.e30.AAAA"
    answers = [
        me(node, token)
        for token in (
            ".".join(tampered_tag),
            ".".join(with_key),
            ".".join([alg_none, *parts[1:]]),
            jws,
            "not-a-token",
            "A" * 5000,
        )
    ]
    assert {answer.status_code for answer in answers} == {401}
    assert len({answer.content for answer in answers}) == 1
    assert len({answer.headers.get("www-authenticate") for answer in answers}) == 1


def test_logout_revokes_the_encrypted_token(node: Served) -> None:
    cookies, csrf = login(node)
    token = cookies[AUTH_COOKIE]
    assert me(node, token).status_code == 200
    logout = httpx.post(
        f"{node.url}/auth/logout",
        headers={"cookie": f"{AUTH_COOKIE}={token}", "x-csrf-token": csrf},
        timeout=10,
    )
    assert logout.status_code in (200, 204), logout.text
    assert me(node, token).status_code == 401


def test_hybrid_refresh_issues_a_new_jwe(tmp_path: Path) -> None:
    args = ("--mode", "hybrid", "--store", "memory://", "--demo")
    with serve(tmp_path, *args, env=clean_env(**JWE)) as served:
        cookies, csrf = login(served)
        refreshed = httpx.post(
            f"{served.url}/auth/refresh",
            headers={"cookie": f"{REFRESH_COOKIE}={cookies[REFRESH_COOKIE]}", "x-csrf-token": csrf},
            timeout=10,
        )
        assert refreshed.status_code == 200, refreshed.text
        token = cookies_of(refreshed)[AUTH_COOKIE]
        assert token != cookies[AUTH_COOKIE]
        assert len(token.split(".")) == 5
        assert me(served, token).json()["user"]["username"] == "alice"


def test_a_jws_node_and_a_jwe_node_do_not_read_each_others_tokens(tmp_path: Path) -> None:
    """The format is a node setting: a token of the other format is refused (401), never
    read by guessing; nodes sharing a store must share the format (docs/deploy.md)."""
    store = f"sqlite:///{tmp_path}/shared.db"
    name = add_user(store)
    with ExitStack() as stack:
        jwe_node, jws_node = (
            stack.enter_context(serve(tmp_path, "--mode", "stateless", "--store", store, env=env))
            for env in (node_env(**JWE), node_env())
        )
        for issuer, reader in ((jwe_node, jws_node), (jws_node, jwe_node)):
            response = httpx.post(
                f"{issuer.url}/auth/login",
                json={"username": name, "password": "correct horse battery"},
                timeout=10,
            )
            token = cookies_of(response)[AUTH_COOKIE]
            assert me(issuer, token).status_code == 200
            assert me(reader, token).status_code == 401


def test_the_dashboard_says_the_token_is_encrypted_and_shows_what_the_node_decrypted(
    node: Served,
) -> None:
    cookies, _ = login(node)
    page = httpx.get(
        f"{node.url}/", headers={"cookie": f"{AUTH_COOKIE}={cookies[AUTH_COOKIE]}"}, timeout=10
    )
    assert page.status_code == 200
    assert "An encrypted JWT (JWE)" in page.text
    assert "<code>alg: dir</code>" in page.text and "<code>enc: A256GCM</code>" in page.text
    assert "<code>sub</code>" in page.text  # the claims, decrypted by the node
    assert "decryption and claims" in page.text
    assert "A signed JWT" not in page.text
