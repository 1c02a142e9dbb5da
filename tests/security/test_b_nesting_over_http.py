"""B. Parsing, over a real ``authstate serve`` process (red team F1; T81, T82).

An unsigned 1.8 KB token with claims nested 450-900 levels around one ``\\u`` escape
made the lone-surrogate walk overflow the stack outside the parser's guard: 500 on every
route (``/healthz`` and ``/auth/login`` included, the connection reset on ``/``) and a
~122 KB traceback per request in the log. Here the same token, its relatives, and the
same shapes in login bodies go to a real server in the two JWT modes: one byte-identical
401, every other route unaffected, and not one traceback in the log.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from authstate.cookies import AUTH_COOKIE
from tests.cli.serve_process import Served, cookie_header, serve
from tests.crypto.forge import b64

UNAUTHENTICATED = b'{"error":"unauthenticated","detail":"authentication required"}'
# The F1 reproduction: the depths that crashed, 300 (refused before, by luck of the stack)
# and 1000 (refused by the C scanner's own limit).
DEPTHS = (300, 450, 600, 750, 900, 1000)


@pytest.fixture(scope="module", params=["stateless", "hybrid"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp(request.param)
    store = f"sqlite:///{tmp / 'auth.db'}"
    with serve(tmp, "--demo", "--mode", request.param, "--store", store) as served:
        yield served


def deep_tokens(url: str) -> list[str]:
    """The F1 token at each depth under the server's real kid (its first JWKS key), with
    ``\\u0041`` and a lone surrogate at the bottom, plus nested objects: unsigned."""
    key = httpx.get(f"{url}/.well-known/jwks.json", timeout=5).json()["keys"][0]
    head = b64(json.dumps({"alg": key["alg"], "typ": "at+jwt", "kid": key["kid"]}).encode())
    zero = b64(b"\x00" * 64)
    tokens = []
    for depth in DEPTHS:
        for inner in (b'"\\u0041"', b'"\\ud800"'):
            claims = b'{"a":' + b"[" * depth + inner + b"]" * depth + b"}"
            tokens.append(f"{head}.{b64(claims)}.{zero}")
    objects = b'{"a":' * 400 + b'"\\u0041"' + b"}" * 400
    tokens.append(f"{head}.{b64(objects)}.{zero}")
    assert all(len(token) <= 4096 for token in tokens)
    return tokens


def assert_no_traceback(server: Served, since: int = 0) -> None:
    """No traceback in the server's log (from offset ``since``), and no line of the size of
    one: F1 wrote a 122 KB line per request."""
    log = server.stderr[since:]
    assert "Traceback" not in log
    assert "RecursionError" not in log
    assert max(map(len, log.splitlines()), default=0) < 4000


def test_a_deeply_nested_token_is_the_one_401_and_breaks_no_other_route(server: Served) -> None:
    """T81 (F1): each deep token as the auth cookie gets exactly the 401 any bad cookie
    gets on /auth/me; with the same cookie /healthz is 200, the dashboard answers as it
    does for an anonymous visitor, /auth/login still logs alice in, and an unknown path is
    404. The server log holds no traceback."""
    url = server.url
    anonymous_page = httpx.get(f"{url}/", headers={"cookie": f"{AUTH_COOKIE}=x"}, timeout=5)
    assert anonymous_page.status_code < 500
    password = server.demo_passwords()["alice"]
    for token in deep_tokens(url):
        cookie = {"cookie": f"{AUTH_COOKIE}={token}"}
        me = httpx.get(f"{url}/auth/me", headers=cookie, timeout=5)
        assert (me.status_code, me.content) == (401, UNAUTHENTICATED)
        assert httpx.get(f"{url}/healthz", headers=cookie, timeout=5).status_code == 200
        page = httpx.get(f"{url}/", headers=cookie, timeout=5)
        assert page.status_code == anonymous_page.status_code
        assert httpx.get(f"{url}/nowhere", headers=cookie, timeout=5).status_code == 404
    login = httpx.post(
        f"{url}/auth/login",
        json={"username": "alice", "password": password},
        headers={"cookie": f"{AUTH_COOKIE}={deep_tokens(url)[2]}"},
        timeout=10,
    )
    assert login.status_code == 200, login.text
    me = httpx.get(f"{url}/auth/me", headers={"cookie": cookie_header(login)}, timeout=5)
    assert me.status_code == 200
    assert_no_traceback(server)


BAD_BODIES = {
    "deep-array": b'{"username":"alice","password":"x","a":'
    + b"[" * 600
    + b'"\\u0041"'
    + b"]" * 600
    + b"}",
    "deep-object": b'{"username":"alice","password":"x","a":' + b'{"a":' * 600 + b"1" + b"}" * 601,
    "lone-surrogate-username": b'{"username":"\\ud800alice","password":"correct horse"}',
    "lone-surrogate-password": b'{"username":"alice","password":"correct \\udfff horse"}',
    "float-overflow": b'{"username":"alice","password":"correct horse","n":1e400}',
    "int-over-4300-digits": b'{"username":"alice","password":"correct horse","n":'
    + b"9" * 5000
    + b"}",
    "duplicate-at-depth": b'{"username":"alice","password":"correct horse","a":[{"b":1,"b":2}]}',
}


@pytest.mark.parametrize("name", list(BAD_BODIES))
def test_hostile_json_login_bodies_are_400_and_the_node_keeps_serving(
    server: Served, name: str
) -> None:
    """T82: login bodies nested 600 levels (arrays around an escape, objects), a lone
    surrogate in the username or password (no account name or password can hold one),
    a float that overflows, a 5000-digit integer, a duplicate
    name inside a nested object: 400 "body must be a JSON object", no cookie, /healthz
    still 200, no traceback in the log. (Before: the first five were parsed and answered
    401 as a wrong password; the last two were already 400.)"""
    since = len(server.stderr)
    response = httpx.post(
        f"{server.url}/auth/login",
        content=BAD_BODIES[name],
        headers={"content-type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 400, response.text
    assert response.json()["detail"] == "body must be a JSON object"
    assert "set-cookie" not in response.headers
    assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
    assert_no_traceback(server, since)


def test_nothing_in_this_module_left_a_traceback(server: Served) -> None:
    """The whole run against this server, read once more at the end."""
    assert_no_traceback(server)
