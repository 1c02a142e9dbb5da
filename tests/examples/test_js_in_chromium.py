"""examples/static/authstate-fetch.js in Debian's Chromium, against examples/starlette_app.py
served by uvicorn on http://localhost (where browsers accept Secure cookies)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import unavailable
from tests.examples.conftest import EXAMPLES, PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
ACCESS_TTL_SECONDS = 4  # long enough for the steps before the wait on a loaded machine


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSTATE_")}
    return {**env, **settings}


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium; skipped locally when missing, a failure under CI's settings."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """The notes app (hybrid, 1 s access tokens, no leeway) with user alice; its URL."""
    env = _env(AUTHSTATE_ACCESS_TTL=f"{ACCESS_TTL_SECONDS}s", AUTHSTATE_LEEWAY="0")
    subprocess.run(
        [sys.executable, "-m", "authstate.cli", "users", "add", "alice", "--password-stdin"],
        input=PASSWORD + "\n",
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    port = _free_port()
    log = (tmp_path / "uvicorn.log").open("w")
    command = [sys.executable, "-m", "uvicorn", "--app-dir", str(EXAMPLES), "starlette_app:app"]
    process = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/static/authstate-fetch.js").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail((tmp_path / "uvicorn.log").read_text())
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def test_the_snippet_sends_the_csrf_header_and_refreshes(chromium: Path, served: str) -> None:
    """Sign in, write a note (header sent), outlive the access token (refreshed), sign out."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page()
            page.goto(served + "/")
            page.get_by_label("Username").fill("alice")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("status")).to_have_text("signed in (hybrid)")

            page.get_by_label("Note").fill("first")
            with page.expect_request(lambda r: r.method == "POST" and "/api/" in r.url) as sent:
                page.get_by_role("button", name="Add").click()
            expect(page.get_by_role("status")).to_have_text("POST /api/notes: 201")
            assert sent.value.headers.get("x-csrf-token")

            # The same request without the snippet, hence without X-CSRF-Token, is refused.
            plain_status = page.evaluate(
                """() => fetch("/api/notes", {method: "POST", body: "{}",
                          headers: {"Content-Type": "application/json"}}).then(r => r.status)"""
            )
            assert plain_status == 403

            time.sleep(ACCESS_TTL_SECONDS + 0.5)  # the access cookie expires in the browser
            page.get_by_label("Note").fill("second")
            with page.expect_request(lambda r: r.url.endswith("/auth/refresh")) as refresh:
                page.get_by_role("button", name="Add").click()
            assert refresh.value.headers.get("x-csrf-token")
            expect(page.get_by_role("status")).to_have_text("POST /api/notes: 201")
            expect(page.get_by_role("listitem")).to_have_text(["first", "second"])

            page.get_by_role("button", name="Sign out").click()
            expect(page.get_by_role("status")).to_have_text("signed out: 204")
            assert page.evaluate("() => document.cookie") == ""
        finally:
            browser.close()
