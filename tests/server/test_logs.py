"""Audit and access log lines: structured, with the events an operator needs, and never a
password, token, CSRF token or session ID."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from authstate.cookies import AUTH_COOKIE, CSRF_COOKIE, REFRESH_COOKIE
from authstate.server.logs import JSONLineFormatter
from tests.server.conftest import PASSWORD, Deployment

pytestmark = pytest.mark.anyio


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Everything authstate logs, formatted as the server writes it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONLineFormatter())
    logger = logging.getLogger("authstate")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(previous)


async def test_audit_events_are_logged_without_any_secret(
    deployment: Deployment, log_lines: io.StringIO
) -> None:
    secrets: list[str] = [PASSWORD, "a brand new secret", "wrong password!"]
    async with deployment.client() as client:
        await client.post("/auth/login", json={"username": "alice", "password": "wrong password!"})
    user = await deployment.logged_in()
    async with user:
        secrets += [user.auth_cookie, user.csrf, user.client.cookies.get(REFRESH_COOKIE) or ""]
        changed = await user.post(
            "/auth/password",
            json={"current_password": PASSWORD, "new_password": "a brand new secret"},
        )
        # The new credentials come with a new CSRF cookie (the body of a 204 is empty).
        user.csrf = user.client.cookies.get(CSRF_COOKIE) or ""
        secrets += [user.auth_cookie, user.csrf, user.client.cookies.get(REFRESH_COOKIE) or ""]
        me = await user.me()
        assert changed.status_code == 204 and me.status_code == 200
        assert (await user.post("/auth/logout-all")).status_code == 204
    text = log_lines.getvalue()
    for secret in filter(None, secrets):
        assert secret not in text
    records = [json.loads(line) for line in text.splitlines()]
    events = {record.get("event") for record in records}
    assert {"login_failed", "login", "password_changed", "logout_all", "request"} <= events
    login = next(r for r in records if r.get("event") == "login")
    assert login["logger"] == "authstate.audit"
    assert login["user_id"] and login["ip"]
    request = next(r for r in records if r.get("event") == "request" and r["path"] == "/auth/me")
    assert request["status"] == 200 and request["method"] == "GET"
    assert request["user_id"] == login["user_id"]


async def test_the_access_log_never_contains_the_query_string(
    memory_deployment: Deployment, log_lines: io.StringIO
) -> None:
    async with memory_deployment.client() as client:
        await client.get("/", params={AUTH_COOKIE: "leaked-value"})
    assert "leaked-value" not in log_lines.getvalue()


def test_fields_named_like_credentials_are_dropped_by_the_formatter() -> None:
    record = logging.LogRecord("authstate.audit", logging.INFO, __file__, 1, "login", (), None)
    record.__dict__.update(
        {"event": "login", "password": "hunter22", "refresh_token": "abc", "session_id": "s"}
    )
    entry = json.loads(JSONLineFormatter().format(record))
    assert entry["event"] == "login" and entry["msg"] == "login"
    assert not {"password", "refresh_token", "session_id"} & set(entry)
