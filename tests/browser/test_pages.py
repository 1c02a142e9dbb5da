"""The pages in real headless Chromium (Debian's, never a downloaded one) against a real
``authstate serve`` on ``http://localhost``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.cli.serve_process import Served, serve

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("AUTHSTATE_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason} and AUTHSTATE_REQUIRE_SERVICES=1", pytrace=False)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture(params=["stateless", "session", "hybrid"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    store = f"sqlite:///{tmp_path / 'authstate.db'}"
    with serve(tmp_path, "--demo", "--mode", request.param, "--store", store) as served:
        yield served


def home(server: Served) -> str:
    # localhost, not 127.0.0.1: the host browsers treat as secure over plain HTTP.
    return f"http://localhost:{server.port}/"


def sign_in(context: BrowserContext, server: Served, name: str, password: str) -> Page:
    page = context.new_page()
    page.goto(home(server))
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    return page


def test_sign_in_sign_out_everywhere_and_a_wrong_password(
    browser: Browser, server: Served, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    mode = "stateless" if "mode:  stateless" in server.stdout else None
    password = server.demo_passwords()["alice"]
    # The first browser runs without JavaScript: the pages must not need it.
    first = browser.new_context(java_script_enabled=False)
    second = browser.new_context(
        user_agent="Mozilla/5.0 (Macintosh; Mac OS X 14_0) Version/17.0 Safari/605.1.15"
    )
    try:
        page = sign_in(first, server, "alice", password)
        expect(page.locator("#whoami")).to_have_text("Signed in as alice")

        cookies = {c["name"]: c for c in first.cookies()}
        auth = cookies["__Host-authstate"]
        assert auth["secure"] and auth["httpOnly"] and auth["path"] == "/"
        assert auth["sameSite"] == "Lax"
        assert "__Host-authstate-csrf" in cookies
        assert not cookies["__Host-authstate-csrf"]["httpOnly"]
        if "mode:  hybrid" in server.stdout:
            refresh = cookies["__Secure-authstate-refresh"]
            assert refresh["path"] == "/auth" and refresh["sameSite"] == "Strict"
        expect(page.locator("#cookie-bytes")).to_have_text(
            f"{len('__Host-authstate=') + len(auth['value'])} bytes"
        )
        expect(page.get_by_role("heading", name="Cost of your cookie")).to_be_visible()

        other = sign_in(second, server, "alice", password)
        expect(other.locator("#whoami")).to_have_text("Signed in as alice")
        page.reload()
        if mode != "stateless":
            expect(page.locator("#sessions tbody tr")).to_have_count(2)
            expect(page.get_by_text("Safari on macOS")).to_be_visible()
        if "mode:  hybrid" in server.stdout:
            page.set_viewport_size({"width": 1000, "height": 800})
            # In the test's own directory: a fixed path under /tmp would clash between runs
            # and users, and could be a symlink planted by someone else.
            screenshot = tmp_path / "authstate-dashboard.png"
            page.screenshot(path=str(screenshot), full_page=True)
            assert screenshot.stat().st_size > 0

        page.get_by_role("button", name="Log out everywhere").click()
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        assert "__Host-authstate" not in {c["name"] for c in first.cookies()}

        other.reload()
        expect(other.get_by_role("button", name="Sign in")).to_be_visible()
        expect(other.locator("#whoami")).to_have_count(0)

        other.get_by_label("Username").fill("alice")
        other.get_by_label("Password").fill("not the password")
        with other.expect_response(lambda r: r.url.endswith("/auth/login")) as answer:
            other.get_by_role("button", name="Sign in").click()
        assert answer.value.status == 401
        expect(other.get_by_role("alert")).to_have_text("Wrong username or password.")
    finally:
        first.close()
        second.close()
