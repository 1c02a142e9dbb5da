"""``authstate serve`` as a user runs it: a real process, real HTTP, real signals."""

from __future__ import annotations

import http.client
import json
import signal
import socket
from pathlib import Path

import httpx
import pytest

from tests.cli.serve_process import clean_env, cookie_header, run_cli, serve, wait_until

pytestmark = pytest.mark.slow


def login(url: str, name: str, password: str) -> tuple[str, str]:
    """Log in with JSON; return the Cookie header to send and the CSRF token."""
    response = httpx.post(
        f"{url}/auth/login", json={"username": name, "password": password}, timeout=10
    )
    assert response.status_code == 200, response.text
    return cookie_header(response), response.json()["csrf_token"]


def me(url: str, cookie: str) -> int:
    return httpx.get(f"{url}/auth/me", headers={"cookie": cookie}, timeout=5).status_code


def test_the_readme_command_serves_a_newcomer_who_logs_in_with_the_demo_password(
    tmp_path: Path,
) -> None:
    # No --store: the embedded default, sqlite:///authstate.db in the working directory.
    with serve(tmp_path, "--demo", cwd=tmp_path) as server:
        passwords = server.demo_passwords()
        assert set(passwords) == {"alice", "bob"}
        cookie, _ = login(server.url, "alice", passwords["alice"])
        assert me(server.url, cookie) == 200
        page = httpx.get(f"{server.url}/", headers={"cookie": cookie}, timeout=5)
        assert "Signed in as alice" in page.text
        status = server.stop(signal.SIGTERM)
    assert status == 0
    out = server.stdout
    assert f"authstate listening on http://127.0.0.1:{server.port}" in out
    assert "mode:  hybrid" in out
    assert "store: sqlite:///authstate.db" in out
    assert out.rstrip().endswith("authstate stopped")
    assert (tmp_path / "authstate.db").exists()
    log = server.stderr
    assert "Traceback" not in log
    for password in passwords.values():
        assert password not in log
    events = [json.loads(line).get("event") for line in log.splitlines()]
    assert "login" in events


@pytest.mark.parametrize("mode", ["stateless", "session", "hybrid"])
def test_each_mode_logs_in_and_out_over_http_and_stops_on_sigint(tmp_path: Path, mode: str) -> None:
    store = f"sqlite:///{tmp_path / 'a.db'}"
    with serve(tmp_path, "--demo", "--mode", mode, "--store", store) as server:
        assert f"mode:  {mode}" in server.stdout
        cookie, csrf = login(server.url, "bob", server.demo_passwords()["bob"])
        assert me(server.url, cookie) == 200
        logout = httpx.post(
            f"{server.url}/auth/logout", headers={"cookie": cookie, "x-csrf-token": csrf}
        )
        assert logout.status_code == 204
        assert me(server.url, cookie) == 401
        assert server.stop(signal.SIGINT) == 0


@pytest.mark.parametrize("mode", ["stateless", "session", "hybrid"])
def test_revoke_all_from_the_command_line_reaches_a_running_server(
    tmp_path: Path, mode: str
) -> None:
    store = f"sqlite:///{tmp_path / 'a.db'}"
    with serve(tmp_path, "--demo", "--mode", mode, "--store", store) as server:
        cookie, _ = login(server.url, "alice", server.demo_passwords()["alice"])
        assert me(server.url, cookie) == 200
        listed = run_cli("sessions", "list", "alice", "--store", store)
        assert listed.returncode == 0
        result = run_cli("sessions", "revoke-all", "alice", "--store", store)
        assert result.returncode == 0, result.stderr
        # Another process changed the store: the server learns it from the change log.
        assert wait_until(lambda: me(server.url, cookie) == 401, timeout=5)


def test_several_workers_share_the_store_and_the_revocations(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'a.db'}"
    with serve(tmp_path, "--demo", "--workers", "2", "--store", store) as server:
        assert "workers: 2" in server.stdout
        password = server.demo_passwords()["alice"]
        laptop, csrf = login(server.url, "alice", password)
        phone, _ = login(server.url, "alice", password)
        # New connections land on either worker; every one of them knows both logins.
        assert all(me(server.url, c) == 200 for c in (laptop, phone) * 5)
        response = httpx.post(
            f"{server.url}/auth/logout-all", headers={"cookie": laptop, "x-csrf-token": csrf}
        )
        assert response.status_code == 204
        assert wait_until(lambda: all(me(server.url, phone) == 401 for _ in range(6)), timeout=5)
        assert server.stop(signal.SIGTERM) == 0
    assert "Traceback" not in server.stderr


def test_a_busy_port_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("serve", "--port", str(port), "--store", f"sqlite:///{tmp_path / 'a.db'}")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"authstate: error: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]


def test_a_bad_setting_stops_the_start_with_one_line_naming_it(tmp_path: Path) -> None:
    env = clean_env(AUTHSTATE_ACCESS_TTL="15x")
    result = run_cli("serve", "--store", f"sqlite:///{tmp_path / 'a.db'}", env=env)
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("authstate: error: AUTHSTATE_ACCESS_TTL: '15x' is not a duration")


def test_a_megabyte_login_body_gets_413_before_it_is_sent_over_real_http(tmp_path: Path) -> None:
    """The declared length alone earns the 413: the server answers after the first
    kilobyte, without waiting for (or reading) the megabyte."""
    with serve(tmp_path, "--store", f"sqlite:///{tmp_path / 'a.db'}") as server:
        head = (
            f"POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000030\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
            raw.sendall(head.encode() + b'{"username":"alice","password":"' + b"x" * 1000)
            answer = http.client.HTTPResponse(raw)
            answer.begin()
            body = json.loads(answer.read())
        assert answer.status == 413
        assert body["error"] == "payload_too_large"
        assert httpx.get(f"{server.url}/healthz").status_code == 200
