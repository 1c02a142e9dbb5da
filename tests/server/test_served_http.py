"""The HTTP surface of a real ``authstate serve`` process (red team F3, F5, I6): what the
attacks did over the wire, done again over the wire."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from authstate.cookies import AUTH_COOKIE, REFRESH_COOKIE
from tests.cli.serve_process import Served, serve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hybrid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp_path: Path = tmp_path_factory.mktemp("served")
    with serve(tmp_path, "--mode", "hybrid", "--store", "memory://", "--demo") as served:
        yield served


def login(served: Served, name: str) -> tuple[dict[str, str], str]:
    """The cookies (refresh cookie included) and CSRF token of a fresh login."""
    password = served.demo_passwords()[name]
    response = httpx.post(
        f"{served.url}/auth/login", json={"username": name, "password": password}, timeout=10
    )
    assert response.status_code == 200, response.text
    cookies = {}
    for header in response.headers.get_list("set-cookie"):
        cookie_name, rest = header.split("=", 1)
        cookies[cookie_name] = rest.split(";", 1)[0]
    return cookies, response.json()["csrf_token"]


def raw(served: Served, request: bytes) -> bytes:
    """Send exact request bytes (any Host header) and return the whole answer."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_a_planted_refresh_cookie_does_not_switch_the_account(hybrid: Served) -> None:
    """F3: alice's access cookie and CSRF token with bob's refresh cookie: 401, no cookie
    set; bob's refresh token still works afterwards."""
    alice, alice_csrf = login(hybrid, "alice")
    bob, bob_csrf = login(hybrid, "bob")
    mixed = f"{AUTH_COOKIE}={alice[AUTH_COOKIE]}; {REFRESH_COOKIE}={bob[REFRESH_COOKIE]}"
    origin = hybrid.url
    response = httpx.post(
        f"{hybrid.url}/auth/refresh",
        headers={"cookie": mixed, "x-csrf-token": alice_csrf, "origin": origin},
        timeout=10,
    )
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_refresh"
    assert "set-cookie" not in response.headers
    own = httpx.post(
        f"{hybrid.url}/auth/refresh",
        headers={"cookie": f"{REFRESH_COOKIE}={bob[REFRESH_COOKIE]}", "x-csrf-token": bob_csrf},
        timeout=10,
    )
    assert own.status_code == 200 and own.json()["user"]["username"] == "bob"


@pytest.mark.parametrize(
    "request_line",
    [b"GET /auth/me/ HTTP/1.1", b"POST /auth/login/ HTTP/1.1", b"GET /auth/sessions/ HTTP/1.1"],
)
def test_no_answer_redirects_to_the_host_header(hybrid: Served, request_line: bytes) -> None:
    """F5: with ``Host: evil.example`` the answer is 400 and names no location; with the
    server's own host a trailing slash is a JSON 404, not a 307."""
    body = b'{"username":"alice","password":"x"}'
    for host, status in (
        (b"evil.example", b" 400 "),
        (f"127.0.0.1:{hybrid.port}".encode(), b" 404 "),
    ):
        answer = raw(
            hybrid,
            request_line + b"\r\nHost: " + host + b"\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body,
        )
        head = answer.split(b"\r\n\r\n", 1)[0].lower()
        assert status in head.split(b"\r\n", 1)[0], head
        assert b"location:" not in head and b"evil" not in answer
        assert b"x-content-type-options: nosniff" in head


def test_localhost_names_work_out_of_the_box(hybrid: Served) -> None:
    """The default AUTHSTATE_ALLOWED_HOSTS serves 127.0.0.1 and localhost."""
    for host in (f"127.0.0.1:{hybrid.port}", f"localhost:{hybrid.port}", "localhost"):
        response = httpx.get(f"{hybrid.url}/healthz", headers={"host": host}, timeout=10)
        assert response.status_code == 200, host


def test_a_404_that_echoes_its_path_is_nosniff(hybrid: Served) -> None:
    """I6: the JSON 404 names the path; it is never sniffed as HTML."""
    response = httpx.get(f"{hybrid.url}/<script>alert(1)</script>", timeout=10)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_a_session_in_use_never_idles_out_under_a_short_idle_lifetime(tmp_path: Path) -> None:
    """Issue 11 item 7: with ``AUTHSTATE_IDLE_TTL=4s`` and the default 60 s "last seen"
    interval, activity was never written in time and a session used every 1.5 s died after
    4 s. The interval is now at most a quarter of the idle lifetime; left alone for longer
    than the idle lifetime (plus that interval), the session still dies."""
    env = {"AUTHSTATE_IDLE_TTL": "4s"}
    with serve(tmp_path, "--mode", "session", "--store", "memory://", "--demo", env=env) as served:
        cookies, _ = login(served, "alice")
        jar = {"cookie": f"{AUTH_COOKIE}={cookies[AUTH_COOKIE]}"}
        deadline = time.monotonic() + 9.0  # more than twice the idle lifetime
        while time.monotonic() < deadline:
            me = httpx.get(f"{served.url}/auth/me", headers=jar, timeout=10)
            assert me.status_code == 200, "a session in use idled out"
            time.sleep(1.5)
        time.sleep(4.0 + 1.0 + 0.5)  # idle lifetime + the write interval (4 s / 4) + slack
        assert httpx.get(f"{served.url}/auth/me", headers=jar, timeout=10).status_code == 401
