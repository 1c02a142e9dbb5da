"""The pages in real headless Chromium (Debian's, never a downloaded one) against a real
``authstate serve`` on ``http://localhost``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.cli.serve_process import Served, serve
from tests.conftest import unavailable

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Response

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
# A user agent as long as real ones get, in the sessions table.
LONG_AGENT = (
    "Mozilla/5.0 (Linux; Android 14; SM-S928B Build/UP1A.231005.007; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36 "
    "[FBAN/EMA;FBLC/en_US;FBAV/404.0.0.10.108;]"
)
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
        unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
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


# What Playwright says when a reload meets a navigation the page started itself.
NAVIGATION_RACES = (
    "ERR_ABORTED",
    "Not attached to an active page",
    "interrupted by another navigation",
    "frame was detached",
)


def reload(page: Page) -> None:
    """Reload the page. The dashboard may be navigating on its own at that moment: its live
    list refetches when a login elsewhere pushes a message, and it reloads itself when its
    socket is closed because the session was signed out from another device. A reload that
    meets such a navigation waits for it to finish and is tried again (at most three times)."""
    from playwright.sync_api import Error

    for attempt in range(3):
        try:
            page.reload()
            return
        except Error as error:
            if attempt == 2 or not any(race in str(error) for race in NAVIGATION_RACES):
                raise
            page.wait_for_load_state()


def wait_until_live(page: Page, mode: str) -> None:
    """In session and hybrid modes the dashboard's session list listens on /auth/ws: wait
    until its socket is open, so that a revocation elsewhere reaches this page."""
    from playwright.sync_api import expect

    if mode != "stateless":
        expect(page.locator("#sessions")).to_have_attribute("data-live", "on")


def expect_signed_out(page: Page, mode: str) -> None:
    """A page whose session was ended elsewhere shows the login page: in session and hybrid
    modes by itself (its socket is closed with 4401, the refresh fails, it reloads), in
    stateless mode (no live list) on its next load. Reloading a page that is reloading
    itself races with it, so only the stateless page is reloaded here."""
    from playwright.sync_api import expect

    if mode == "stateless":
        reload(page)
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def home(server: Served) -> str:
    # The address the banner tells people to open.
    return f"http://localhost:{server.port}/"


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where the screenshots go: $AUTHSTATE_SCREENSHOTS to keep them, else pytest's tmp_path."""
    folder = Path(os.environ.get("AUTHSTATE_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


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

    mode = next(m for m in ("stateless", "session", "hybrid") if f"mode:  {m}" in server.stdout)
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
        size = len(auth["value"])
        kind = "ID" if "mode:  session" in server.stdout else "token"
        expect(page.locator("#cookie-bytes")).to_have_text(
            f"{kind} {size} bytes, cookie {len('__Host-authstate=') + size} bytes with its name"
        )
        expect(page.get_by_role("heading", name="Cost of your cookie")).to_be_visible()

        other = sign_in(second, server, "alice", password)
        expect(other.locator("#whoami")).to_have_text("Signed in as alice")
        wait_until_live(other, mode)
        reload(page)
        if mode != "stateless":
            expect(page.locator("#sessions tbody tr")).to_have_count(2)
            expect(page.get_by_text("Safari on macOS")).to_be_visible()

        page.get_by_role("button", name="Log out everywhere").click()
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        assert "__Host-authstate" not in {c["name"] for c in first.cookies()}

        expect_signed_out(other, mode)
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


@dataclass
class Console:
    """What a page reported: console errors, uncaught exceptions, failed subresources.

    A refused form post answers its page with the status the JSON answer has (401, 403...),
    which Chromium also logs as "Failed to load resource"; those pages are the contract,
    so that one message about such a page is not counted. Anything else is (a 404 favicon,
    a CSP violation, a script error)."""

    errors: list[str] = field(default_factory=list)
    refused_pages: set[str] = field(default_factory=set)

    def watch(self, page: Page) -> Page:
        page.on("response", self._response)
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        return page

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            if response.request.resource_type == "document":
                self.refused_pages.add(response.url)
            else:
                self.errors.append(f"{response.status} {response.url}")

    def _console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        own_status = message.text.startswith("Failed to load resource: the server responded")
        if own_status and message.location.get("url") in self.refused_pages:
            return
        self.errors.append(f"{message.text} ({message.location.get('url')})")


def assert_fits(page: Page, width: int, what: str) -> None:
    """No horizontal scroll: the page is no wider than the window."""
    scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert inner == width
    assert scroll <= inner, f"{what} is {scroll} px wide in a {inner} px window"


def assert_revoke_buttons_usable(page: Page, width: int) -> int:
    buttons = page.locator("#sessions").get_by_role("button", name="Revoke")
    for button in buttons.all():
        button.scroll_into_view_if_needed()
        box = button.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, box
        # Playwright's actionability checks: visible, stable, enabled, and the topmost
        # element at its centre (nothing covers it), without submitting the form.
        button.click(trial=True)
    return buttons.count()


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_every_page_fits_a_phone_and_a_desktop(
    browser: Browser, server: Served, viewport: dict[str, int], screenshots: Path
) -> None:
    from playwright.sync_api import expect

    mode = next(m for m in ("stateless", "session", "hybrid") if f"mode:  {m}" in server.stdout)
    name = f"{mode}-{viewport['width']}"
    password = server.demo_passwords()["alice"]
    console = Console()
    context = browser.new_context(viewport=viewport, user_agent=LONG_AGENT)
    other = browser.new_context(viewport=viewport, user_agent=LONG_AGENT)
    try:
        page = console.watch(context.new_page())
        page.goto(home(server))
        assert_fits(page, viewport["width"], "the login page")
        page.screenshot(path=str(screenshots / f"{name}-login.png"), full_page=True)

        # A refused login: the error page keeps the username (escaped), not the password.
        typed = 'alice <b>"&'
        page.get_by_label("Username").fill(typed)
        page.get_by_label("Password").fill("not the password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
        expect(page.get_by_label("Username")).to_have_value(typed)
        expect(page.get_by_label("Password")).to_have_value("")
        assert_fits(page, viewport["width"], "the login error page")
        page.screenshot(path=str(screenshots / f"{name}-login-error.png"), full_page=True)

        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#whoami")).to_have_text("Signed in as alice")
        # The second device stays open until its context closes: Page.close() has no timeout
        # and once hung on a loaded machine until pytest-timeout ended the test.
        sign_in(other, server, "alice", password)
        reload(page)
        assert_fits(page, viewport["width"], f"the {mode} dashboard")
        if mode == "stateless":
            expect(page.locator("#sessions")).to_have_count(0)
        else:
            assert assert_revoke_buttons_usable(page, viewport["width"]) == 2
        page.screenshot(path=str(screenshots / f"{name}-dashboard.png"), full_page=True)

        # A refused form on the dashboard: the page again, with its message.
        page.get_by_label("Current password").fill("not the password")
        page.get_by_label("New password").fill("a new password")
        page.get_by_role("button", name="Change password").click()
        expect(page.get_by_role("alert")).to_have_text(
            "Your current password is not right, so nothing was changed."
        )
        assert_fits(page, viewport["width"], f"the {mode} dashboard with an error")
        page.screenshot(path=str(screenshots / f"{name}-dashboard-error.png"), full_page=True)

        if mode != "stateless":
            page.locator("#sessions").get_by_role("button", name="Revoke").last.click()
            expect(page.locator("#sessions tbody tr")).to_have_count(1)
        assert console.errors == []
    finally:
        context.close()
        other.close()


def test_the_favicon_is_served(browser: Browser, server: Served) -> None:
    context = browser.new_context()
    try:
        response = context.request.get(f"{home(server)}favicon.ico")
        assert response.status == 200
        assert response.headers["content-type"] == "image/svg+xml"
        assert response.body().startswith(b"<svg")
    finally:
        context.close()


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_the_secure_cookies_work_over_plain_http_on_either_loopback_name(
    browser: Browser, tmp_path: Path, host: str
) -> None:
    """What README, quickstart and banner say: the banner's localhost address, and
    127.0.0.1 too, keep the Secure, __Host- cookies over plain HTTP in Chromium."""
    from playwright.sync_api import expect

    with serve(tmp_path, "--demo", "--mode", "session", "--store", "memory://") as server:
        assert f"open http://localhost:{server.port}/ in a browser" in server.stdout
        context = browser.new_context()
        try:
            page = context.new_page()
            page.goto(f"http://{host}:{server.port}/")
            page.get_by_label("Username").fill("alice")
            page.get_by_label("Password").fill(server.demo_passwords()["alice"])
            page.get_by_role("button", name="Sign in").click()
            expect(page.locator("#whoami")).to_have_text("Signed in as alice")
            assert "__Host-authstate" in {c["name"] for c in context.cookies()}
        finally:
            context.close()


@pytest.fixture(params=["session", "hybrid"])
def stateful_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    store = f"sqlite:///{tmp_path / 'authstate.db'}"
    with serve(tmp_path, "--demo", "--mode", request.param, "--store", store) as served:
        yield served


def test_the_dashboard_shows_the_session_data_the_browser_saved(
    browser: Browser, stateful_server: Served
) -> None:
    """The page's own cookies and CSRF token update the data (a fetch-like PATCH from the
    browser context); the reloaded dashboard shows it, and the cookie does not carry it."""
    from playwright.sync_api import expect

    server = stateful_server
    context = browser.new_context()
    try:
        page = sign_in(context, server, "alice", server.demo_passwords()["alice"])
        expect(page.locator("#session-data-empty")).to_be_visible()
        csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
        assert csrf
        response = context.request.patch(
            f"{home(server)}auth/session/data",
            data={"theme": "dark", "cart": [1, 2]},
            headers={"x-csrf-token": csrf, "origin": home(server).rstrip("/")},
        )
        assert response.status == 200, response.text()
        reload(page)
        rows = page.locator("#session-data-entries tbody tr")
        expect(rows).to_have_count(2)
        expect(rows.nth(0)).to_contain_text("cart")
        expect(rows.nth(1)).to_contain_text('"dark"')
        assert all("dark" not in c["value"] for c in context.cookies())
    finally:
        context.close()


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_remember_me_and_signing_out_other_devices_in_chromium(
    browser: Browser, server: Served, viewport: dict[str, int], screenshots: Path
) -> None:
    """The "Remember me" box is on the login page, ticked, usable at phone and desktop
    widths; unticked, the browser holds the login only in session cookies (Chromium's
    expires = -1). "Sign out every other device" ends the other browser's session."""
    from playwright.sync_api import expect

    mode = next(m for m in ("stateless", "session", "hybrid") if f"mode:  {m}" in server.stdout)
    password = server.demo_passwords()["alice"]
    context = browser.new_context(viewport=viewport, user_agent=LONG_AGENT)
    other = browser.new_context(viewport=viewport)
    try:
        page = context.new_page()
        page.goto(home(server))
        remember = page.get_by_label("Remember me")
        expect(remember).to_be_checked()
        remember.scroll_into_view_if_needed()
        box = remember.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"]
        assert_fits(page, viewport["width"], "the login page with its Remember me box")
        page.screenshot(
            path=str(screenshots / f"{mode}-{viewport['width']}-remember.png"), full_page=True
        )
        remember.uncheck()
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#whoami")).to_have_text("Signed in as alice")
        ours = [c for c in context.cookies() if "authstate" in c["name"]]
        assert ours and all(c["expires"] == -1 for c in ours), ours

        elsewhere = sign_in(other, server, "alice", password)
        expect(elsewhere.locator("#whoami")).to_have_text("Signed in as alice")
        wait_until_live(elsewhere, mode)
        assert [c["expires"] > 0 for c in other.cookies()] == [True] * len(other.cookies())
        reload(page)
        button = page.get_by_role("button", name="Sign out every other device")
        button.scroll_into_view_if_needed()
        box = button.bounding_box()
        assert box is not None and box["x"] + box["width"] <= viewport["width"], box
        button.click()
        expect(page.locator("#whoami")).to_have_text("Signed in as alice")
        if mode != "stateless":
            expect(page.locator("#sessions tbody tr")).to_have_count(1)
        expect_signed_out(elsewhere, mode)
    finally:
        context.close()
        other.close()
