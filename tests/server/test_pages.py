"""The pages at ``/``, driven as a browser without JavaScript would: GETs and form posts."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from authstate.cookies import AUTH_COOKIE, CSRF_COOKIE
from authstate.errors import StoreUnavailable
from authstate.server import cookie_cost
from authstate.server.cookie_cost import Timings
from authstate.stores.base import UserRecord
from tests.server.conftest import PASSWORD, Deployment, deploy, fast_hasher, set_cookie_headers

pytestmark = pytest.mark.anyio


@dataclass
class Form:
    action: str
    fields: dict[str, str] = field(default_factory=dict)


class Page(HTMLParser):
    """The forms of a page (action and every input's name) and its alert text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self.alerts: list[str] = []
        self._in_alert = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if tag == "form":
            assert attributes.get("method") == "post"
            self.forms.append(Form(attributes["action"]))
        elif tag == "input" and self.forms:
            self.forms[-1].fields[attributes["name"]] = attributes.get("value", "")
        elif attributes.get("role") == "alert":
            self._in_alert = True

    def handle_endtag(self, tag: str) -> None:
        self._in_alert = False

    def handle_data(self, data: str) -> None:
        if self._in_alert and data.strip():
            self.alerts.append(data.strip())

    def form(self, action: str) -> Form:
        return next(f for f in self.forms if f.action == action)


async def form_login(client: httpx.AsyncClient, password: str = PASSWORD) -> httpx.Response:
    login = Page((await client.get("/")).text).form("/auth/login")
    return await client.post(
        "/auth/login", data={**login.fields, "username": "alice", "password": password}
    )


async def test_logged_out_the_page_is_a_login_form(deployment: Deployment) -> None:
    async with deployment.client() as client:
        response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    form = Page(response.text).form("/auth/login")
    assert set(form.fields) == {"csrf_token", "username", "password", "remember"}
    assert form.fields["csrf_token"]


async def test_logged_in_the_page_is_a_dashboard_with_a_csrf_token_in_every_form(
    deployment: Deployment,
) -> None:
    async with deployment.client(
        headers={"user-agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"}
    ) as client:
        assert (await form_login(client)).status_code == 303
        response = await client.get("/")
        cookie = client.cookies.get(AUTH_COOKIE) or ""
    assert response.status_code == 200
    html = response.text
    page = Page(html)
    assert "Signed in as alice" in html
    assert f"{deployment.mode} mode" in html
    assert f"{len(AUTH_COOKIE) + 1 + len(cookie)} bytes" in html
    actions = [form.action for form in page.forms]
    assert {"/auth/logout", "/auth/logout-all", "/auth/password"} <= set(actions)
    for form in page.forms:
        assert form.fields.get("csrf_token"), form.action
    if deployment.mode == "session":
        assert "opaque session ID" in html
        assert cookie not in html  # the secret itself is never shown
    else:
        payload = cookie.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        assert claims["sub"] in html and claims["jti"] in html
    revoke = [a for a in actions if a.startswith("/auth/sessions/") and "revoke-others" not in a]
    assert "/auth/sessions/revoke-others" in actions  # "sign out every other device"
    if deployment.mode == "stateless":
        assert revoke == []
        assert "keeps no sessions" in html
    else:
        assert len(revoke) == 1
        assert "Firefox on Linux" in html
        assert "this browser" in html


def cost_panel(html: str) -> str:
    """The "cost of your cookie" section of a dashboard."""
    match = re.search(r'<section class="card" id="cookie-cost">.*?</section>', html, re.S)
    assert match, "no cost panel on the page"
    return match.group(0)


def panel_field(panel: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}">(.*?)</', panel, re.S)
    assert match, element_id
    return match.group(1)


async def test_the_dashboard_shows_what_the_cookie_costs_on_this_node(
    deployment: Deployment,
) -> None:
    async with deployment.client() as client:
        login = await form_login(client)
        assert login.status_code == 303
        # The value exactly as the login response set it.
        set_cookie = set_cookie_headers(login)[AUTH_COOKIE]
        value = set_cookie.split(";", 1)[0].split("=", 1)[1]
        response = await client.get("/")
        assert (await client.get("/auth/me")).status_code == 200  # still signed in
    assert response.status_code == 200
    panel = cost_panel(response.text)
    assert f"<code>{AUTH_COOKIE}</code>" in panel
    assert panel_field(panel, "cost-bytes") == f"{len(f'{AUTH_COOKIE}={value}')} bytes"
    for element_id in ("cost-cold", "cost-warm"):
        micros = re.fullmatch(r"([\d,.]+) µs", panel_field(panel, element_id))
        assert micros, panel
        assert float(micros.group(1).replace(",", "")) > 0  # a measurement, never a threshold
    assert f"<dd>{deployment.mode}" in panel
    if deployment.mode == "session":
        assert "cost-alg" not in panel
    else:
        header = value.split(".")[0]
        alg = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["alg"]
        assert panel_field(panel, "cost-alg") == alg
    # Measuring left the cookie cached on this node, as any request does.
    auth = deployment.auth
    if deployment.mode == "session":
        assert auth.mode.authenticate_from_memory(value) is not None
    else:
        assert len(auth.tokens) == 1


async def test_the_cost_is_measured_once_per_node_not_on_every_page_view(
    memory_deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    measured = []
    measure = cookie_cost.measure_cookie_cost

    async def counting(*args: Any, **kwargs: Any) -> Timings:
        measured.append(1)
        return await measure(*args, **kwargs)

    monkeypatch.setattr(cookie_cost, "measure_cookie_cost", counting)
    async with memory_deployment.client() as client:
        await form_login(client)
        first = cost_panel((await client.get("/")).text)
        second = cost_panel((await client.get("/")).text)
    # Another browser: another cookie, the same node, the figures it already has.
    async with memory_deployment.client() as client:
        await form_login(client)
        third = cost_panel((await client.get("/")).text)
    assert len(measured) == 1
    for element_id in ("cost-cold", "cost-warm"):
        assert panel_field(first, element_id) == panel_field(second, element_id)
        assert panel_field(first, element_id) == panel_field(third, element_id)
    assert "measured once on this node" in first


async def test_the_cost_panel_says_unavailable_when_it_cannot_measure(
    memory_deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def store_down(*args: object, **kwargs: object) -> Timings:
        raise StoreUnavailable(reason="store down for the test")

    monkeypatch.setattr(cookie_cost, "measure_cookie_cost", store_down)
    async with memory_deployment.client() as client:
        await form_login(client)
        response = await client.get("/")
        cookie = client.cookies.get(AUTH_COOKIE) or ""
    assert response.status_code == 200
    assert "Signed in as alice" in response.text
    assert {"/auth/logout", "/auth/logout-all", "/auth/password"} <= {
        form.action for form in Page(response.text).forms
    }
    panel = cost_panel(response.text)
    assert panel_field(panel, "cost-bytes") == f"{len(AUTH_COOKIE) + 1 + len(cookie)} bytes"
    assert "µs" not in panel
    assert panel.count("unavailable") == 2


async def test_a_session_the_store_cannot_read_back_still_gets_its_dashboard(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def store_down(key: str) -> None:
        raise StoreUnavailable(reason="store down for the test")

    async for dep in deploy("memory://", mode="session"):
        await dep.add_user()
        async with dep.client() as client:
            await form_login(client)
            # The request itself is answered from the node's cache; the cold measurement
            # has to read the session from the store, which fails.
            monkeypatch.setattr(dep.auth.store, "get_session", store_down)
            response = await client.get("/")
        assert response.status_code == 200
        assert "Signed in as alice" in response.text
        assert "cannot reach its store" not in response.text  # the sessions were listed
        assert cost_panel(response.text).count("unavailable") == 2


async def test_when_the_store_failed_the_page_the_cookie_is_not_measured_and_stays_cached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def store_down(user_id: str) -> None:
        raise StoreUnavailable(reason="store down for the test")

    async for dep in deploy("memory://", mode="session"):
        await dep.add_user()
        async with dep.client() as client:
            await form_login(client)
            monkeypatch.setattr(dep.auth.store, "get_user", store_down)
            response = await client.get("/")
            cookie = client.cookies.get(AUTH_COOKIE) or ""
        assert response.status_code == 200
        assert "cannot reach its store" in response.text
        assert cost_panel(response.text).count("unavailable") == 2
        assert dep.auth.mode.authenticate_from_memory(cookie) is not None


async def test_a_wrong_password_shows_an_error_on_the_login_page(deployment: Deployment) -> None:
    async with deployment.client() as client:
        response = await form_login(client, password="not the password")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/html")
    assert Page(response.text).alerts == ["Wrong username or password."]
    assert "/auth/login" in [f.action for f in Page(response.text).forms]
    assert AUTH_COOKIE not in set_cookie_headers(response)


async def test_a_refused_login_keeps_the_username_escaped_and_never_the_password(
    memory_deployment: Deployment,
) -> None:
    typed = 'alice"><script>x</script>'
    async with memory_deployment.client() as client:
        login = Page((await client.get("/")).text).form("/auth/login")
        response = await client.post(
            "/auth/login",
            data={**login.fields, "username": typed, "password": "Zq9 secret attempt"},
        )
    assert response.status_code == 401
    again = Page(response.text).form("/auth/login")
    assert again.fields["username"] == typed  # what the browser shows, after unescaping
    assert "<script>" not in response.text
    assert 'value="alice&#34;&gt;&lt;script&gt;x&lt;/script&gt;"' in response.text
    assert again.fields.get("password", "") == ""
    assert "Zq9 secret attempt" not in response.text


async def test_the_favicon_is_an_svg(memory_deployment: Deployment) -> None:
    async with memory_deployment.client() as client:
        response = await client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.content.startswith(b"<svg")


async def test_too_many_attempts_show_on_the_page_with_429() -> None:
    async for dep in deploy("memory://", mode="session", login_max_attempts=2):
        await dep.add_user()
        async with dep.client() as client:
            for _ in range(2):
                await form_login(client, password="wrong wrong")
            response = await form_login(client)
        assert response.status_code == 429
        assert int(response.headers["retry-after"]) > 0
        assert "Too many failed attempts" in Page(response.text).alerts[0]


async def test_the_logout_button_signs_out(deployment: Deployment) -> None:
    async with deployment.client() as client:
        await form_login(client)
        logout = Page((await client.get("/")).text).form("/auth/logout")
        response = await client.post("/auth/logout", data=logout.fields)
        assert response.status_code == 303
        assert response.headers["clear-site-data"] == '"cookies"'
        page = await client.get("/")
    assert "/auth/login" in [f.action for f in Page(page.text).forms]


async def test_log_out_everywhere_signs_out_the_other_browser(deployment: Deployment) -> None:
    async with deployment.client() as first, deployment.client() as second:
        await form_login(first)
        await form_login(second)
        button = Page((await first.get("/")).text).form("/auth/logout-all")
        response = await first.post("/auth/logout-all", data=button.fields)
        assert response.status_code == 303
        other = await second.get("/")
    assert "Signed in as" not in other.text
    assert "/auth/login" in [f.action for f in Page(other.text).forms]


async def test_the_revoke_button_ends_that_session(stateful_deployment: Deployment) -> None:
    deployment = stateful_deployment
    async with deployment.client() as first, deployment.client() as second:
        await form_login(first)
        await form_login(second)
        page = Page((await first.get("/")).text)
        revoke = [
            f
            for f in page.forms
            if f.action.startswith("/auth/sessions/") and "revoke-others" not in f.action
        ]
        assert len(revoke) == 2
        own = (await first.get("/auth/me")).json()["session"]["id"]
        other = next(f for f in revoke if not f.action.endswith(own))
        response = await first.post(other.action, data=other.fields)
        assert response.status_code == 303
        assert (await second.get("/auth/me")).status_code == 401
        assert (await first.get("/auth/me")).status_code == 200
        # The same button again: the session is gone, and the page says so.
        again = await first.post(other.action, data=other.fields)
    assert again.status_code == 404
    assert Page(again.text).alerts == ["That session no longer exists."]


async def test_the_password_form_changes_the_password_and_stays_signed_in(
    deployment: Deployment,
) -> None:
    async with deployment.client() as client, deployment.client() as other:
        await form_login(client)
        await form_login(other)
        form = Page((await client.get("/")).text).form("/auth/password")
        wrong = await client.post(
            "/auth/password",
            data={**form.fields, "current_password": "nope nope", "new_password": "n" * 12},
        )
        assert wrong.status_code == 401
        assert "current password is not right" in Page(wrong.text).alerts[0]
        weak = await client.post(
            "/auth/password",
            data={**form.fields, "current_password": PASSWORD, "new_password": "short"},
        )
        assert weak.status_code == 400
        assert "at least 8 characters" in Page(weak.text).alerts[0]
        done = await client.post(
            "/auth/password",
            data={**form.fields, "current_password": PASSWORD, "new_password": "n" * 12},
        )
        assert done.status_code == 303
        assert "Signed in as alice" in (await client.get("/")).text
        assert "Signed in as" not in (await other.get("/")).text


async def test_a_stale_csrf_token_shows_a_message_and_changes_nothing(
    deployment: Deployment,
) -> None:
    async with deployment.client() as client:
        await form_login(client)
        response = await client.post("/auth/logout-all", data={"csrf_token": "stale"})
        assert response.status_code == 403
        assert response.headers["content-type"].startswith("text/html")
        assert "out of date" in Page(response.text).alerts[0]
        assert (await client.get("/auth/me")).status_code == 200


async def test_a_form_post_after_the_session_ended_shows_the_login_form(
    deployment: Deployment,
) -> None:
    async with deployment.client() as client:
        await form_login(client)
        form = Page((await client.get("/")).text).form("/auth/logout")
        client.cookies.clear()
        response = await client.post("/auth/logout", data=form.fields)
    assert response.status_code == 401
    page = Page(response.text)
    assert page.alerts == ["You are signed out. Please sign in again."]
    assert "/auth/login" in [f.action for f in page.forms]


async def test_an_oversized_form_is_refused_with_a_page(memory_deployment: Deployment) -> None:
    async with memory_deployment.client() as client:
        await form_login(client)
        response = await client.post(
            "/auth/password", data={"csrf_token": "x", "new_password": "x" * 100_000}
        )
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/html")


async def test_names_are_escaped_on_the_page(memory_deployment: Deployment) -> None:
    # add_user refuses such a name now; a store written by an older version may hold one.
    auth = memory_deployment.auth
    await auth.store.create_user(
        UserRecord(
            id="e7e",
            username="<b>eve</b>",
            password_hash=fast_hasher().hash(PASSWORD),
            created_at=auth.clock.now(),
        )
    )
    async with memory_deployment.client() as client:
        await client.post("/auth/login", data={"username": "<b>eve</b>", "password": PASSWORD})
        html = (await client.get("/")).text
    assert "&lt;b&gt;eve&lt;/b&gt;" in html
    assert "<b>eve</b>" not in html


async def test_hybrid_offers_to_resume_when_only_the_csrf_cookie_is_left() -> None:
    async for dep in deploy("memory://", mode="hybrid"):
        await dep.add_user()
        async with dep.client() as client:
            await form_login(client)
            # What a browser holds once the 15-minute access cookie has expired.
            client.cookies.delete(AUTH_COOKIE)
            page = Page((await client.get("/")).text)
            assert client.cookies.get(CSRF_COOKIE)
            resume = page.form("/auth/refresh")
            response = await client.post("/auth/refresh", data=resume.fields)
            assert response.status_code == 303
            assert "Signed in as alice" in (await client.get("/")).text


async def test_the_dashboard_shows_this_sessions_data_escaped(deployment: Deployment) -> None:
    async with await deployment.logged_in() as alice, await deployment.logged_in() as other:
        empty = (await alice.client.get("/")).text
        if deployment.mode == "stateless":
            assert 'id="session-data"' in empty and "no server-side data" in empty
            return
        assert 'id="session-data-empty"' in empty
        update = {"cart": [1, 2], "note": "<script>x</script>", "ü": None}
        response = await alice.client.patch(
            "/auth/session/data", json={**update, "ü": "é"}, headers=alice.headers
        )
        assert response.status_code == 200, response.text
        await other.client.patch("/auth/session/data", json={"mine": 1}, headers=other.headers)
        html = (await alice.client.get("/")).text
    section = html.split('id="session-data"', 1)[1].split("</section>", 1)[0]
    assert "<code>cart</code>" in section and "[1, 2]" in section
    assert "&#34;&lt;script&gt;x&lt;/script&gt;&#34;" in section and "<script>" not in section
    assert "<code>ü</code>" in section and "&#34;é&#34;" in section
    assert "mine" not in section  # another session's data is not this one's
    size = len('{"cart":[1,2],"note":"<script>x</script>","ü":"é"}'.encode())
    assert f"{size} of 16384 bytes used" in section
