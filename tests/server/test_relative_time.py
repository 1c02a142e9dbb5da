"""Every time the dashboard shows reads as words, whatever its distance from now."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from authstate.server.pages import relative_time
from tests.cli.serve_process import clean_env, cookie_header, serve

NOW = 1_780_000_000.0
# A thousand years either way, in whole seconds and in fractions.
SPAN = 1000 * 365 * 86400
TEXT = re.compile(r"just now|in a few seconds|(in )?\d+ (min|h|day|days)( ago)?")


@given(
    st.one_of(
        st.integers(-SPAN, SPAN),
        st.floats(-SPAN, SPAN, allow_nan=False, allow_infinity=False),
    )
)
@example(45)
@example(-45)
@example(59.999)
@example(-59.5)
@example(60)
def test_every_delta_past_or_future_reads_as_text(delta: float) -> None:
    timestamp = NOW + delta
    text = relative_time(timestamp, NOW)
    assert TEXT.fullmatch(text), text
    in_the_past = text == "just now" or text.endswith(" ago")
    # The delta as the function sees it (a tiny float delta rounds away in NOW + delta).
    assert in_the_past == (timestamp <= NOW), text


@pytest.mark.parametrize(("delta", "text"), [(-50, "1 min ago"), (50, "in 1 min")])
def test_under_a_minute_but_over_45_seconds_is_one_minute(delta: int, text: str) -> None:
    assert relative_time(NOW + delta, NOW) == text


@pytest.mark.slow
def test_a_token_expiring_in_50_seconds_gets_its_dashboard(tmp_path: Path) -> None:
    # A 50 s access token puts its "exp" 45-59 s ahead on the first page view, the
    # window that used to answer 500 to every newcomer who reloaded in the first minute.
    env = clean_env(AUTHSTATE_ACCESS_TTL="50s")
    store = f"sqlite:///{tmp_path / 'authstate.db'}"
    with serve(tmp_path, "--demo", "--mode", "stateless", "--store", store, env=env) as server:
        password = server.demo_passwords()["alice"]
        login = httpx.post(
            f"{server.url}/auth/login",
            json={"username": "alice", "password": password},
            timeout=10,
        )
        assert login.status_code == 200, login.text
        page = httpx.get(f"{server.url}/", headers={"cookie": cookie_header(login)}, timeout=10)
    assert page.status_code == 200, page.text
    assert "Signed in as alice" in page.text
    assert "in 1 min" in page.text
