"""An ``authstate`` reference app per test, in every mode, on ``memory://`` and SQLite.

Clients talk to it through httpx's ASGI transport at ``https://testserver``: the cookies
are ``Secure`` and ``__Host-``, which a cookie jar only keeps and returns over HTTPS.
Passwords use a deliberately weak argon2 so that the suite stays fast.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from authstate import AuthState
from authstate.cookies import AUTH_COOKIE
from authstate.passwords import PasswordHasher
from authstate.server.app import create_app
from authstate.settings import Settings

BASE = "https://testserver"
PASSWORD = "correct horse battery"
MODES = ("stateless", "session", "hybrid")
STORES = ("memory", "sqlite")


def fast_hasher() -> PasswordHasher:
    return PasswordHasher(memory_kib=64, time_cost=1, unsafe_allow_weak_parameters=True)


@dataclass
class Deployment:
    """One running app: its ``AuthState`` and helpers to make clients and users."""

    auth: AuthState
    app: Starlette

    @property
    def mode(self) -> str:
        return self.auth.settings.mode

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url=BASE, **kwargs
        )

    async def add_user(self, name: str = "alice", roles: tuple[str, ...] = ("staff",)) -> str:
        user = await self.auth.accounts.add_user(name, PASSWORD, roles)
        return user.id

    async def logged_in(self, name: str = "alice", password: str = PASSWORD) -> LoggedIn:
        client = self.client()
        response = await client.post("/auth/login", json={"username": name, "password": password})
        assert response.status_code == 200, response.text
        return LoggedIn(client, response.json()["csrf_token"])


@dataclass
class LoggedIn:
    client: httpx.AsyncClient
    csrf: str

    @property
    def headers(self) -> dict[str, str]:
        return {"x-csrf-token": self.csrf}

    @property
    def auth_cookie(self) -> str:
        value = self.client.cookies.get(AUTH_COOKIE)
        assert value
        return value

    async def __aenter__(self) -> LoggedIn:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.post(path, headers=self.headers, **kwargs)

    async def me(self) -> httpx.Response:
        return await self.client.get("/auth/me")


async def deploy(store_url: str, **overrides: Any) -> AsyncIterator[Deployment]:
    overrides.setdefault("allowed_hosts", "testserver")
    settings = Settings.from_env({}, store=store_url, **overrides)
    auth = AuthState(settings, password_hasher=fast_hasher())
    app = create_app(auth=auth)
    async with auth:
        yield Deployment(auth, app)


def store_url(kind: str, tmp_path: Path) -> str:
    return "memory://" if kind == "memory" else f"sqlite:///{tmp_path / 'authstate.db'}"


@pytest.fixture(params=[(m, s) for s in STORES for m in MODES], ids=lambda p: f"{p[0]}-{p[1]}")
async def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Deployment]:
    """The app in each mode on each embedded store, with user alice."""
    mode, store = request.param
    async for dep in deploy(store_url(store, tmp_path), mode=mode):
        await dep.add_user()
        yield dep


@pytest.fixture(
    params=[(m, s) for s in STORES for m in ("session", "hybrid")],
    ids=lambda p: f"{p[0]}-{p[1]}",
)
async def stateful_deployment(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Deployment]:
    """The modes that keep sessions on the server (session, hybrid), with user alice."""
    mode, store = request.param
    async for dep in deploy(store_url(store, tmp_path), mode=mode):
        await dep.add_user()
        yield dep


@pytest.fixture(params=MODES)
async def memory_deployment(request: pytest.FixtureRequest) -> AsyncIterator[Deployment]:
    """The app in each mode on ``memory://``: for tests where the store does not matter."""
    async for dep in deploy("memory://", mode=request.param):
        await dep.add_user()
        yield dep


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def set_cookie_headers(response: httpx.Response) -> dict[str, str]:
    """``{cookie name: full Set-Cookie value}`` of a response."""
    result = {}
    for value in response.headers.get_list("set-cookie"):
        result[value.split("=", 1)[0]] = value
    return result
