"""The dashboard's session list follows /auth/ws in real headless Chromium: a login
elsewhere and a revoked session appear without a reload, and a revoked browser is shown
the login page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.browser.test_pages import Console, browser, home, sign_in
from tests.cli.serve_process import Served, serve

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]

__all__ = ["browser"]  # the module-scoped fixture, shared with test_pages

# A hang guard, not a latency claim: logins and revocations elsewhere are pushed at once (bus).
WAIT_MS = 20_000


@pytest.fixture(params=["session", "hybrid"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    store = f"sqlite:///{tmp_path / 'authstate.db'}"
    with serve(tmp_path, "--demo", "--mode", request.param, "--store", store) as served:
        yield served


def test_the_session_list_updates_live_when_the_user_logs_in_and_out_elsewhere(
    browser: Browser, server: Served
) -> None:
    from playwright.sync_api import expect

    password = server.demo_passwords()["alice"]
    watcher = browser.new_context()
    elsewhere = browser.new_context(
        user_agent="Mozilla/5.0 (Macintosh; Mac OS X 14_0) Version/17.0 Safari/605.1.15"
    )
    try:
        page = sign_in(watcher, server, "alice", password)
        console = Console()
        console.watch(page)
        rows = page.locator("#sessions tbody tr")
        expect(rows).to_have_count(1)
        expect(page.locator("#sessions")).to_have_attribute("data-live", "on", timeout=WAIT_MS)
        # Marks this document: a reload would lose it.
        page.evaluate("window.notReloaded = true")

        other = sign_in(elsewhere, server, "alice", password)
        expect(rows).to_have_count(2, timeout=WAIT_MS)
        expect(page.get_by_text("Safari on macOS")).to_be_visible()

        other.get_by_role("button", name="Log out", exact=True).click()
        expect(rows).to_have_count(1, timeout=WAIT_MS)
        assert page.evaluate("window.notReloaded === true")
        # No CSP violation, script error or failed request while the list was updated.
        assert console.errors == []

        # Revoked from elsewhere: the socket closes with 4401 and the page shows the login.
        other = sign_in(elsewhere, server, "alice", password)
        expect(rows).to_have_count(2, timeout=WAIT_MS)
        other.get_by_role("button", name="Log out everywhere").click()
        expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=WAIT_MS)
        assert page.url == home(server)
    finally:
        watcher.close()
        elsewhere.close()


def test_the_dashboard_title_is_plain_text(browser: Browser, server: Served) -> None:
    context = browser.new_context()
    try:
        page = sign_in(context, server, "alice", server.demo_passwords()["alice"])
        assert page.title() == "alice · authstate"
    finally:
        context.close()
