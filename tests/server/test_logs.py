"""Audit and access log lines: structured, with the events an operator needs, and never a
password, token, CSRF token or session ID."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

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


# -- the formatter is fast, and writes what the plain stdlib formatting wrote ----------------------
def reference_line(record: logging.LogRecord) -> dict[str, object]:
    """The line as the first formatter built it, field by field with the stdlib: the
    value the faster one must still write."""
    standard = set(vars(logging.LogRecord("", 0, "", 0, "", (), None)))
    standard |= {"message", "asctime", "color_message", "taskName"}
    words = ("password", "token", "secret", "cookie", "session_id", "authorization")
    entry: dict[str, object] = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    for key, value in vars(record).items():
        if key in standard or key.startswith("_") or key in entry:
            continue
        if any(word in key.lower() for word in words):
            continue
        plain = value is None or isinstance(value, bool | int | float)
        entry[key] = value if plain else str(value)[:200]
    return entry


FIELD_NAMES = st.one_of(
    st.sampled_from(
        [
            "event",
            "user_id",
            "ip",
            "msg",
            "ts",
            "level",
            "name",
            "args",
            "_private",
            "access_token",
            "Session_ID",
            "X-Cookie",
            "duration_ms",
            "status",
            "taskName",
            "message",
        ]
    ),
    st.text(min_size=1, max_size=12),
)
FIELD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=300),
    st.lists(st.integers(), max_size=3),
)
# From before 1970 to past 2100, whole seconds and the instants next to them.
TIMES = st.one_of(
    st.floats(-2e9, 5e9, allow_nan=False),
    st.integers(-2_000_000_000, 5_000_000_000).map(float),
    st.integers(-2_000_000_000, 5_000_000_000).map(lambda s: s - 5e-7),
    st.integers(-2_000_000_000, 5_000_000_000).map(lambda s: s + 0.9995),
)


@given(created=TIMES, fields=st.dictionaries(FIELD_NAMES, FIELD_VALUES, max_size=8))
@example(created=1_796_442_231.9999995, fields={"event": "request"})
@example(created=-0.5, fields={})
@example(created=0.0, fields={"password": "hunter22", "ts": "forged", "msg": "forged"})
def test_the_line_holds_what_stdlib_formatting_gives(
    created: float, fields: dict[str, object]
) -> None:
    record = logging.LogRecord(
        "authstate.access", logging.INFO, __file__, 1, "%s %d", ("x", 1), None
    )
    record.created = created
    for key, value in fields.items():
        if key not in vars(record):  # makeRecord refuses to overwrite a record attribute
            setattr(record, key, value)
    line = JSONLineFormatter().format(record)
    assert "\n" not in line
    assert json.loads(line) == reference_line(record)


def test_a_field_the_formatter_cannot_encode_fast_is_still_written() -> None:
    record = logging.LogRecord("authstate.audit", logging.INFO, __file__, 1, "login", (), None)
    record.__dict__.update({"big": 2**80, "lone": "\ud800"})
    entry = json.loads(JSONLineFormatter().format(record))
    assert entry["big"] == 2**80 and entry["lone"] == "\ud800"


def test_the_server_logging_gathers_no_caller_thread_or_process(tmp_path: Path) -> None:
    """``authstate serve``'s lines have no caller, thread or process fields, so its records
    skip gathering them: checked in a child process, since the switches are process-wide."""
    script = tmp_path / "check.py"
    script.write_text(
        "import io, json, logging\n"
        "from authstate.server.logs import configure_logging\n"
        "out = io.StringIO()\n"
        "configure_logging(stream=out)\n"
        "seen = []\n"
        "logging.getLogger().handlers[0].addFilter(lambda record: seen.append(record) or True)\n"
        "logging.getLogger('authstate.access').info('hi', extra={'event': 'request'})\n"
        "r = seen[0]\n"
        "print(json.dumps([r.thread, r.process, r.lineno]))\n"
        "print(out.getvalue().strip())\n"
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True, timeout=60
    )
    gathered, line = result.stdout.splitlines()
    assert json.loads(gathered) == [None, None, 0]
    entry = json.loads(line)
    assert (
        entry["event"] == "request"
        and entry["msg"] == "hi"
        and entry["logger"] == "authstate.access"
    )
