"""H2. The WSGI adapters (Flask, Django) under the CSRF and cookie attacks of H and G.

The adapters share the gate and the endpoints (``authstate.wsgi``), so each attack runs
against both example apps, called as plain WSGI applications with raw requests: an
unsafe request to the application's own route or to ``/auth/*`` without the token bound
to the session, with a token in the wrong place or from another session, cross-site by
Fetch Metadata or Origin, with a tossed (duplicated) auth cookie, and an oversized body.
Each refusal changes nothing (the session still works). Black-box runs under gunicorn:
``tests/wsgi/test_contract.py``.
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.examples.conftest import EXAMPLES, load_example

PASSWORD = "correct horse battery staple"
HOST = "127.0.0.1"
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Any]


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def cookies(self) -> dict[str, str]:
        return {
            value.split("=", 1)[0]: value.split("=", 1)[1].split(";", 1)[0]
            for name, value in self.headers
            if name.lower() == "set-cookie"
        }


@dataclass
class Wsgi:
    app: WsgiApp
    users: dict[str, str] = field(default_factory=dict)

    def send(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        content_type: str = "",
        query: str = "",
    ) -> Answer:
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": HOST,
            "SERVER_PORT": "443",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": HOST,
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.url_scheme": "https",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.version": (1, 0),
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        if content_type:
            environ["CONTENT_TYPE"] = content_type
        for name, value in (headers or {}).items():
            environ["HTTP_" + name.upper().replace("-", "_")] = value
        started: list[Any] = []

        def start_response(status: str, response_headers: Any, exc_info: Any = None) -> None:
            started.append((status, response_headers))

        result = self.app(environ, start_response)
        try:
            data = b"".join(result)
        finally:
            getattr(result, "close", lambda: None)()
        status, response_headers = started[0]
        return Answer(int(status.split()[0]), list(response_headers), data)

    def login(self, username: str) -> dict[str, str]:
        answer = self.send(
            "POST",
            "/auth/login",
            body=json.dumps({"username": username, "password": PASSWORD}).encode(),
            content_type="application/json",
        )
        assert answer.status == 200, answer.body
        return answer.cookies()


def cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


def signed_in(node: Wsgi, cookies: dict[str, str]) -> bool:
    return node.send("GET", "/auth/me", headers={"cookie": cookie_header(cookies)}).status == 200


@pytest.fixture(params=["flask", "django"])
def node(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Wsgi]:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("AUTHSTATE_"):
            monkeypatch.delenv(name)
    if request.param == "flask":
        module = load_example("flask_app")
        auth = module.auth
        auth.start()
        auth.run(auth.core.accounts.add_user("alice", PASSWORD))
        auth.run(auth.core.accounts.add_user("mallory", PASSWORD))
        yield Wsgi(module.app)
        auth.stop()
        sys.modules.pop(module.__name__, None)
        return
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "django_app.settings")
    if str(EXAMPLES) not in sys.path:
        monkeypatch.syspath_prepend(str(EXAMPLES))
    import django
    from django.core.wsgi import get_wsgi_application

    django.setup()
    from authstate.django.conf import get_auth, reset

    sync = get_auth()
    sync.ensure_started()
    sync.run(sync.core.accounts.add_user("alice", PASSWORD))
    sync.run(sync.core.accounts.add_user("mallory", PASSWORD))
    yield Wsgi(get_wsgi_application())
    reset()


NOTE = json.dumps({"text": "forged"}).encode()


def test_the_apps_own_unsafe_route_needs_the_bound_token(node: Wsgi) -> None:
    alice = node.login("alice")
    cookie = cookie_header(alice)
    csrf_cookie = alice["__Host-authstate-csrf"]
    mallory_token = node.login("mallory")["__Host-authstate-csrf"]
    refusals = [
        {},  # no token at all
        {"x-csrf-token": mallory_token},  # a valid token of another session
        {"x-csrf-token": "A" * 66},  # a naive double-submit value
        {"x-csrf-token": csrf_cookie, "sec-fetch-site": "cross-site"},
        {"x-csrf-token": csrf_cookie, "sec-fetch-site": "same-site"},
        {"x-csrf-token": csrf_cookie, "origin": "https://evil.example"},
        {"x-csrf-token": csrf_cookie, "origin": "null"},
    ]
    for headers in refusals:
        answer = node.send(
            "POST",
            "/notes",
            headers={"cookie": cookie, **headers},
            body=NOTE,
            content_type="application/json",
        )
        assert (answer.status, answer.json()["error"]) == (403, "csrf_failed"), headers
    # The token in a query string does not count either.
    answer = node.send(
        "POST",
        "/notes",
        headers={"cookie": cookie},
        body=NOTE,
        content_type="application/json",
        query=f"csrf_token={csrf_cookie}",
    )
    assert answer.status == 403
    listed = node.send("GET", "/notes", headers={"cookie": cookie})
    assert listed.json() == {"notes": []}  # nothing was written
    accepted = node.send(
        "POST",
        "/notes",
        headers={"cookie": cookie, "x-csrf-token": csrf_cookie, "origin": f"https://{HOST}"},
        body=NOTE,
        content_type="application/json",
    )
    assert accepted.status == 201


def test_a_form_post_is_checked_by_its_csrf_token_field(node: Wsgi) -> None:
    alice = node.login("alice")
    cookie = cookie_header(alice)
    refused = node.send(
        "POST",
        "/auth/logout",
        headers={"cookie": cookie},
        body=b"csrf_token=" + b"A" * 66,
        content_type="application/x-www-form-urlencoded",
    )
    assert refused.status == 403
    assert signed_in(node, alice)
    accepted = node.send(
        "POST",
        "/auth/logout",
        headers={"cookie": cookie},
        body=f"csrf_token={alice['__Host-authstate-csrf']}".encode(),
        content_type="application/x-www-form-urlencoded",
    )
    assert (accepted.status, dict(accepted.headers).get("Location")) == (303, "/")
    assert not signed_in(node, alice)


def test_every_unsafe_auth_route_refuses_a_request_without_the_token(node: Wsgi) -> None:
    alice = node.login("alice")
    cookie = cookie_header({**alice})
    handle = node.send("GET", "/auth/me", headers={"cookie": cookie}).json()["session"]["id"]
    for method, path in [
        ("POST", "/auth/logout"),
        ("POST", "/auth/logout-all"),
        ("POST", "/auth/password"),
        ("POST", "/auth/refresh"),
        ("DELETE", f"/auth/sessions/{handle}"),
        # The routes added for parity with ASGI (step-up, devices, session data).
        ("POST", "/auth/reauth"),
        ("POST", "/auth/sessions/revoke-others"),
        ("PATCH", "/auth/session/data"),
    ]:
        answer = node.send(method, path, headers={"cookie": cookie})
        assert answer.status == 403, (method, path, answer.body)
    assert signed_in(node, alice)


def test_a_tossed_auth_cookie_is_anonymous(node: Wsgi) -> None:
    alice, mallory = node.login("alice"), node.login("mallory")
    tossed = (
        f"__Host-authstate={mallory['__Host-authstate']}; "
        f"__Host-authstate={alice['__Host-authstate']}"
    )
    answer = node.send("GET", "/auth/me", headers={"cookie": tossed})
    assert answer.status == 401
    lowercase = f"__host-authstate={alice['__Host-authstate']}"
    assert node.send("GET", "/auth/me", headers={"cookie": lowercase}).status == 401


def test_oversized_bodies_and_unknown_paths(node: Wsgi) -> None:
    big = node.send(
        "POST",
        "/auth/login",
        body=json.dumps({"username": "alice", "password": "x" * 20_000}).encode(),
        content_type="application/json",
    )
    assert (big.status, big.json()["error"]) == (413, "payload_too_large")
    plain = node.send(
        "POST",
        "/auth/login",
        body=json.dumps({"username": "alice", "password": PASSWORD}).encode(),
        content_type="text/plain",
    )
    assert plain.status == 400
    alice = node.login("alice")
    slash = node.send("GET", "/auth/me/", headers={"cookie": cookie_header(alice)})
    assert slash.status in (404, 405)
    assert not any(name.lower() == "location" for name, _ in slash.headers)
