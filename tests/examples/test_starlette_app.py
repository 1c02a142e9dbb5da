"""examples/starlette_app.py: a plain Starlette app in hybrid mode, its page and its script."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from types import ModuleType

import httpx
import pytest

from tests.examples.conftest import BASE, PASSWORD

pytestmark = pytest.mark.anyio


@pytest.fixture
async def notes_app(example: Callable[[str], ModuleType]) -> AsyncIterator[ModuleType]:
    module = example("starlette_app")
    async with module.auth:
        await module.auth.accounts.add_user("alice", PASSWORD)
        yield module


def client(module: ModuleType) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=module.app), base_url=BASE)


async def test_notes_need_a_login_and_a_csrf_header_to_write(notes_app: ModuleType) -> None:
    """Anonymous: 401; signed in: read; a POST needs X-CSRF-Token (403 csrf_failed without)."""
    async with client(notes_app) as http:
        assert (await http.get("/api/notes")).status_code == 401
        login = await http.post("/auth/login", json={"username": "alice", "password": PASSWORD})
        assert login.json()["mode"] == "hybrid"
        assert (await http.get("/api/notes")).json() == {"notes": []}
        refused = await http.post("/api/notes", json={"text": "forged"})
        assert (refused.status_code, refused.json()["error"]) == (403, "csrf_failed")
        written = await http.post(
            "/api/notes",
            json={"text": "hello"},
            headers={"X-CSRF-Token": login.json()["csrf_token"]},
        )
    assert (written.status_code, written.json()) == (201, {"notes": ["hello"]})


async def test_the_page_and_its_script_are_served(notes_app: ModuleType) -> None:
    """GET / is the page, which imports /static/authstate-fetch.js, served as JavaScript."""
    async with client(notes_app) as http:
        page = await http.get("/")
        script = await http.get("/static/authstate-fetch.js")
    assert page.status_code == 200
    assert 'from "/static/authstate-fetch.js"' in page.text
    assert script.status_code == 200
    assert script.headers["content-type"].split(";")[0] in {
        "text/javascript",
        "application/javascript",
    }
    assert 'headers.set("X-CSRF-Token", token)' in script.text
