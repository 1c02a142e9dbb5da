"""Step-up, remember-me and device control through the routes, in every mode on SQLite,
PostgreSQL and Redis (the embedded memory store is covered by tests/security/)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from authstate import AuthState, FrozenClock
from authstate.cookies import AUTH_COOKIE, CSRF_COOKIE, REFRESH_COOKIE
from authstate.events import SessionEvicted
from authstate.server.app import create_app
from authstate.settings import Settings
from tests.multinode.conftest import postgres_schema_url, redis_prefixed_url
from tests.server.conftest import BASE, MODES, PASSWORD, fast_hasher, set_cookie_headers

__all__ = ["postgres_schema_url", "redis_prefixed_url"]  # fixtures, used by name

pytestmark = pytest.mark.anyio

STORES = ("sqlite", "postgres", "redis")
FRESH_WINDOW = 300


class Node:
    """The reference app on a frozen clock, and logged-in browsers on it."""

    def __init__(self, auth: AuthState, clock: FrozenClock) -> None:
        self.auth, self.clock = auth, clock
        self.app = create_app(auth=auth)

    @property
    def mode(self) -> str:
        return self.auth.settings.mode

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=BASE)

    async def login(self, remember: bool | None = None) -> Browser:
        body: dict[str, Any] = {"username": "alice", "password": PASSWORD}
        if remember is not None:
            body["remember"] = remember
        client = self.client()
        response = await client.post("/auth/login", json=body)
        assert response.status_code == 200, response.text
        return Browser(client, response.json()["csrf_token"], response)


class Browser:
    def __init__(self, client: httpx.AsyncClient, csrf: str, last: httpx.Response) -> None:
        self.client, self.csrf, self.last = client, csrf, last

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        response = await self.client.post(path, headers={"x-csrf-token": self.csrf}, **kwargs)
        if CSRF_COOKIE in set_cookie_headers(response):
            self.csrf = self.client.cookies[CSRF_COOKIE]
        self.last = response
        return response

    async def me(self) -> httpx.Response:
        return await self.client.get("/auth/me")

    @property
    def auth_cookie(self) -> str:
        return self.client.cookies[AUTH_COOKIE]


def store_for(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'authstate.db'}"
    fixture = "postgres_schema_url" if kind == "postgres" else "redis_prefixed_url"
    url: str = request.getfixturevalue(fixture)
    return url


@asynccontextmanager
async def started(store: str, mode: str, **overrides: Any) -> AsyncIterator[Node]:
    clock = FrozenClock()
    settings = Settings.from_env(
        {},
        mode=mode,
        store=store,
        secret="step-up-test-secret-" + "x" * 20,
        allowed_hosts="testserver",
        **overrides,
    )
    auth = AuthState(settings, clock=clock, password_hasher=fast_hasher())
    async with auth:
        await auth.accounts.add_user("alice", PASSWORD, ("staff",))
        yield Node(auth, clock)


@pytest.fixture(params=[(m, s) for s in STORES for m in MODES], ids=lambda p: f"{p[0]}-{p[1]}")
def target(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(mode, store URL): each mode on each shared store (sync: the schema is made here)."""
    mode, kind = request.param
    return mode, store_for(kind, request, tmp_path)


@pytest.fixture
async def node(target: tuple[str, str]) -> AsyncIterator[Node]:
    mode, store = target
    async with started(store, mode) as running:
        yield running


def has_lifetime(set_cookie: str) -> bool:
    lowered = set_cookie.lower()
    return "max-age=" in lowered or "expires=" in lowered


# -- step-up -------------------------------------------------------------------------------------
async def test_reauth_makes_a_stale_login_fresh_with_a_new_credential(node: Node) -> None:
    alice = await node.login()
    login_time = int(node.clock.now())
    assert (await alice.me()).json()["auth_time"] == login_time
    node.clock.advance(FRESH_WINDOW + 60)
    stale = await alice.post("/auth/sessions/revoke-others")
    assert stale.status_code == 401 and stale.json()["error"] == "reauth_required"
    old_cookie = alice.auth_cookie
    wrong = await alice.post("/auth/reauth", json={"password": "not the password"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_credentials"
    assert alice.auth_cookie == old_cookie and (await alice.me()).status_code == 200
    right = await alice.post("/auth/reauth", json={"password": PASSWORD})
    assert right.status_code == 200, right.text
    assert set(right.json()) == {"user", "mode", "csrf_token", "expires_at"}
    assert alice.auth_cookie != old_cookie
    me = await alice.me()
    assert me.json()["auth_time"] == int(node.clock.now()) > login_time
    async with node.client() as thief:  # the credential from before the reauth
        assert (
            await thief.get("/auth/me", headers={"cookie": f"{AUTH_COOKIE}={old_cookie}"})
        ).status_code == 401
    assert (await alice.post("/auth/sessions/revoke-others")).status_code == 204


async def test_a_refresh_keeps_the_auth_time_of_the_family() -> None:
    """Hybrid: a rotated access token carries the family's auth_time, not the refresh time."""
    async with started("memory://", "hybrid") as node:
        alice = await node.login()
        login_time = int(node.clock.now())
        node.clock.advance(600)
        assert (await alice.post("/auth/refresh")).status_code == 200
        assert (await alice.me()).json()["auth_time"] == login_time


# -- devices -------------------------------------------------------------------------------------
async def test_revoke_others_leaves_only_the_callers_session(node: Node) -> None:
    caller, phone, laptop = await node.login(), await node.login(), await node.login()
    response = await caller.post("/auth/sessions/revoke-others")
    assert response.status_code == 204
    assert (await phone.me()).status_code == 401
    assert (await laptop.me()).status_code == 401
    assert (await caller.me()).status_code == 200
    if node.mode != "stateless":
        listing = (await caller.client.get("/auth/sessions")).json()["sessions"]
        assert [s["current"] for s in listing] == [True]
    else:  # every token died, the caller got a new one with its auth_time kept
        assert AUTH_COOKIE in set_cookie_headers(response)
        assert (await caller.me()).json()["auth_time"] == int(node.clock.now())


async def test_the_session_cap_evicts_the_oldest(target: tuple[str, str]) -> None:
    mode, store = target
    async with started(store, mode, max_sessions_per_user=2) as node:
        evicted: list[SessionEvicted] = []
        node.auth.subscribe(evicted.append, SessionEvicted)
        browsers = []
        for _ in range(4):
            browsers.append(await node.login())
            node.clock.advance(1)
        statuses = [(await b.me()).status_code for b in browsers]
        if mode == "stateless":  # no sessions to count
            assert statuses == [200, 200, 200, 200]
            assert evicted == []
        else:
            assert statuses == [401, 401, 200, 200]
            listing = await browsers[-1].client.get("/auth/sessions")
            assert len(listing.json()["sessions"]) == 2
            # One typed event per eviction, naming the evicted sessions, never the kept ones.
            kept = {s["id"] for s in listing.json()["sessions"]}
            alice = (await browsers[-1].me()).json()["user"]["id"]
            assert len(evicted) == 2 and {e.user_id for e in evicted} == {alice}
            assert len({e.session_id for e in evicted}) == 2
            assert not kept & {e.session_id for e in evicted}


# -- remember-me ---------------------------------------------------------------------------------
async def test_remember_false_gives_browser_session_cookies_through_every_rotation(
    node: Node,
) -> None:
    forgetful = await node.login(remember=False)
    for header in set_cookie_headers(forgetful.last).values():
        assert not has_lifetime(header), header
    assert (await forgetful.me()).status_code == 200
    node.clock.advance(120)
    if node.mode == "hybrid":
        refreshed = await forgetful.post("/auth/refresh")
        assert refreshed.status_code == 200
        cookies = set_cookie_headers(refreshed)
        assert {AUTH_COOKIE, REFRESH_COOKIE, CSRF_COOKIE} <= set(cookies)
        assert not any(has_lifetime(h) for h in cookies.values()), cookies
    reauth = await forgetful.post("/auth/reauth", json={"password": PASSWORD})
    assert reauth.status_code == 200
    assert not any(has_lifetime(h) for h in set_cookie_headers(reauth).values())
    async with node.client() as client:
        csrf = await client.get(
            "/auth/csrf", headers={"cookie": f"{AUTH_COOKIE}={forgetful.auth_cookie}"}
        )
    assert not has_lifetime(set_cookie_headers(csrf)[CSRF_COOKIE])
    remembered = await node.login()
    for header in set_cookie_headers(remembered.last).values():
        assert "Max-Age=" in header and "Max-Age=0" not in header
    # The server-side expiry is the login's own, whichever the choice.
    me_f, me_r = (await forgetful.me()).json(), (await remembered.me()).json()
    if node.mode == "session":
        assert me_f["session"]["expires_at"] <= me_r["session"]["expires_at"]


async def test_the_login_form_remembers_only_when_the_box_is_ticked() -> None:
    async with started("memory://", "session") as node:
        async with node.client() as client:
            page = await client.get("/")
            assert 'name="remember" value="0"' in page.text and 'type="checkbox"' in page.text
            csrf = client.cookies.get(CSRF_COOKIE) or ""
            fields = {"username": "alice", "password": PASSWORD, "csrf_token": csrf}
            unticked = await client.post("/auth/login", data={**fields, "remember": "0"})
            # What the page sends ticked: the hidden 0, then the checkbox's 1.
            ticked = await client.post(
                "/auth/login",
                content=urlencode([*fields.items(), ("remember", "0"), ("remember", "1")]),
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
        assert unticked.status_code == ticked.status_code == 303
        assert not has_lifetime(set_cookie_headers(unticked)[AUTH_COOKIE])
        assert "Max-Age=604800" in set_cookie_headers(ticked)[AUTH_COOKIE]


# -- require(fresh=...) in an application (FastAPI: tests/examples/test_fastapi_step_up.py) ----
async def test_require_fresh_guards_a_starlette_route() -> None:
    async with started("memory://", "session") as node:
        require_fresh = node.auth.require(fresh=60)

        async def starlette_route(request: Request) -> JSONResponse:
            user = await require_fresh(request)
            return JSONResponse({"user": user.user_id})

        app = Starlette(
            routes=[Route("/guarded", starlette_route), Mount("/auth", node.auth.routes())],
            middleware=[node.auth.middleware()],
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            login = await client.post(
                "/auth/login", json={"username": "alice", "password": PASSWORD}
            )
            assert (await client.get("/guarded")).status_code == 200
            node.clock.advance(61)
            stale = await client.get("/guarded")
            assert stale.status_code == 401 and "reauth_required" in stale.text
            reauth = await client.post(
                "/auth/reauth",
                json={"password": PASSWORD},
                headers={"x-csrf-token": login.json()["csrf_token"]},
            )
            assert reauth.status_code == 200
            assert (await client.get("/guarded")).status_code == 200


@pytest.mark.parametrize("mode", ["stateless", "hybrid"])
async def test_auth_time_and_remember_travel_inside_an_encrypted_token(mode: str) -> None:
    """AUTHSTATE_TOKEN_FORMAT=jwe: the claims are sealed, step-up and remember-me still work."""
    async with started("memory://", mode, token_format="jwe") as node:
        forgetful = await node.login(remember=False)
        assert not any(has_lifetime(h) for h in set_cookie_headers(forgetful.last).values())
        assert (await forgetful.me()).json()["auth_time"] == int(node.clock.now())
        node.clock.advance(FRESH_WINDOW + 1)
        assert (await forgetful.post("/auth/sessions/revoke-others")).status_code == 401
        assert (
            await forgetful.post("/auth/reauth", json={"password": PASSWORD})
        ).status_code == 200
        assert not any(has_lifetime(h) for h in set_cookie_headers(forgetful.last).values())
        assert (await forgetful.post("/auth/sessions/revoke-others")).status_code == 204
