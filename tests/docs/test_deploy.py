"""What docs/deploy.md tells operators, checked against the code: the settings table, the
proxy advice, and the emergency key-retirement script."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from authstate import AuthenticationError, AuthState, Settings
from authstate.passwords import PasswordHasher
from authstate.server.app import create_app
from tests.docs.markdown import DOCS, block_by_id

DEPLOY = DOCS / "deploy.md"
PASSWORD = "correct horse battery"


def settings_rows() -> list[list[str]]:
    text = DEPLOY.read_text()
    table = text.split("<!-- check: settings-table -->", 1)[1].strip().split("\n\n", 1)[0]
    rows = [
        [c.strip().strip("`") for c in line.strip("|").split("|")] for line in table.splitlines()
    ]
    return rows[2:]  # past the header and the separator


def test_the_settings_table_lists_every_setting_once_with_its_real_default() -> None:
    """Each row's default, read as the environment variable would be, is the real default."""
    rows = settings_rows()
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    documented = [row[0].removeprefix("AUTHSTATE_").lower() for row in rows]
    assert sorted(documented) == sorted(fields), "settings missing from or unknown to the table"
    assert len(documented) == len(set(documented))
    defaults = Settings()
    for variable, _flag, default, _meaning in rows:
        name = variable.removeprefix("AUTHSTATE_").lower()
        if default == "—":
            assert getattr(defaults, name) in (None, ()), f"{variable} has a default"
        else:
            assert getattr(Settings(**{name: default}), name) == getattr(defaults, name), variable


def test_the_flags_in_the_settings_table_exist() -> None:
    """`--mode`, `--store`, `--host`, `--port`, `--metrics` are flags of `authstate serve`."""
    from authstate.cli import build_parser

    flags = [row[1] for row in settings_rows() if row[1]]
    words = [x for f in flags for x in (f, _sample(f)) if x is not None]
    args = build_parser().parse_args(["serve", *words])
    assert args.command == "serve"


def _sample(flag: str) -> str | None:
    """A value for ``flag``; None for a switch (``--metrics``) that takes none."""
    samples = {"--mode": "session", "--store": "memory://", "--host": "::1", "--port": "1"}
    if flag == "--metrics":
        return None
    return samples[flag]


# -- behind a TLS-terminating proxy ---------------------------------------------------------------
@pytest.fixture
async def behind_proxy(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    """The reference server as a proxy would reach it: plain HTTP on an internal address."""
    # The public name and the address the proxy reaches the node at, as deploy.md says.
    overrides = {"allowed_hosts": "app.example.com,10.0.0.5", **getattr(request, "param", {})}
    settings = Settings.from_env({}, mode="session", store="memory://", **overrides)
    hasher = PasswordHasher(memory_kib=64, time_cost=1, unsafe_allow_weak_parameters=True)
    auth = AuthState(settings, password_hasher=hasher)
    async with auth:
        await auth.accounts.add_user("alice", PASSWORD)
        transport = httpx.ASGITransport(app=create_app(auth=auth), client=("10.0.0.1", 4711))
        async with httpx.AsyncClient(transport=transport, base_url="http://10.0.0.5:8000") as http:
            yield http


BROWSER = {"Origin": "https://app.example.com", "Sec-Fetch-Site": "same-origin"}
FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "app.example.com"}


async def login(http: httpx.AsyncClient, user: str, headers: dict[str, str]) -> httpx.Response:
    return await http.post(
        "/auth/login", json={"username": user, "password": PASSWORD}, headers=headers
    )


@pytest.mark.anyio
async def test_without_trust_a_browser_post_through_a_tls_proxy_is_refused(
    behind_proxy: httpx.AsyncClient,
) -> None:
    """The page's https origin is not the node's http origin: 403, as the page warns."""
    response = await login(behind_proxy, "alice", {**BROWSER, **FORWARDED})
    assert (response.status_code, response.json()["error"]) == (403, "csrf_failed")


@pytest.mark.anyio
@pytest.mark.parametrize(
    "behind_proxy",
    [
        {"trust_forwarded": True},
        {"allowed_origins": "https://app.example.com"},
    ],
    indirect=True,
    ids=["trust_forwarded", "allowed_origins"],
)
async def test_either_setting_lets_the_browser_post_through(
    behind_proxy: httpx.AsyncClient,
) -> None:
    """AUTHSTATE_TRUST_FORWARDED=1 or AUTHSTATE_ALLOWED_ORIGINS fixes the origin check."""
    assert (await login(behind_proxy, "alice", {**BROWSER, **FORWARDED})).status_code == 200


async def _ten_failures_from_ten_clients(http: httpx.AsyncClient) -> httpx.Response:
    for n in range(10):
        wrong = await http.post(
            "/auth/login",
            json={"username": f"nobody{n}", "password": "wrong password"},
            headers={"X-Forwarded-For": f"203.0.113.{n}"},
        )
        assert wrong.status_code == 401
    return await login(http, "alice", {"X-Forwarded-For": "198.51.100.7"})


@pytest.mark.anyio
async def test_without_trust_ten_failures_anywhere_lock_everyone_out(
    behind_proxy: httpx.AsyncClient,
) -> None:
    """Every client has the proxy's IP, so the per-IP throttle counts them all as one."""
    response = await _ten_failures_from_ten_clients(behind_proxy)
    assert response.status_code == 429


@pytest.mark.anyio
@pytest.mark.parametrize("behind_proxy", [{"trust_forwarded": True}], indirect=True)
async def test_with_trust_each_client_is_counted_by_its_forwarded_ip(
    behind_proxy: httpx.AsyncClient,
) -> None:
    """With the proxy's X-Forwarded-For trusted, other clients' failures do not lock alice out."""
    response = await _ten_failures_from_ten_clients(behind_proxy)
    assert response.status_code == 200


# -- the emergency key retirement --------------------------------------------------------------
def load_script() -> ModuleType:
    block = block_by_id("emergency-key-retire")
    module = ModuleType("retire_now")
    exec(compile(block.text, block.where, "exec"), module.__dict__)  # noqa: S102 - our docs
    return module


@pytest.mark.anyio
async def test_the_emergency_script_stops_a_key_on_a_running_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node on the same store refuses tokens of the retired key and stops publishing it."""
    monkeypatch.setenv("AUTHSTATE_STORE", f"sqlite:///{tmp_path / 'auth.db'}")
    monkeypatch.setenv("AUTHSTATE_MODE", "stateless")
    script = load_script()
    async with AuthState() as node:
        issued = await node.login("u-42")
        leaked = issued.principal.token.kid
        await script.retire_now(leaked)
        deadline = time.monotonic() + 5
        while leaked in {k["kid"] for k in node.jwks()["keys"]}:
            assert time.monotonic() < deadline, "the node never dropped the key"
            await asyncio.sleep(0.05)
        with pytest.raises(AuthenticationError):
            await node.authenticate(issued.auth_value)
        fresh = await node.login("u-42")
        assert fresh.principal.token.kid != leaked
        await node.authenticate(fresh.auth_value)


def test_the_documented_numbers_are_the_codes() -> None:
    """Figures deploy.md quotes: verifier refetch 10 s and cache 300 s, JWKS max-age 300 s,
    a pool of 10 PostgreSQL connections, SQLite lock wait 5 s."""
    import inspect

    from authstate import Verifier
    from authstate.stores.postgres import PostgresStore
    from authstate.stores.sqlite import SQLiteStore

    verifier = inspect.signature(Verifier).parameters
    assert verifier["min_refetch_interval"].default == 10.0
    assert verifier["cache_seconds"].default == 300.0
    assert inspect.signature(PostgresStore).parameters["pool_size"].default == 10
    assert inspect.signature(SQLiteStore).parameters["lock_timeout"].default == 5.0
    routes = Path(inspect.getfile(create_app)).parent.parent / "asgi" / "routes.py"
    assert '"public, max-age=300"' in routes.read_text()
    text = DEPLOY.read_text()
    for figure in ("at most once per 10 s", "`cache_seconds=300`", "max-age=300", "up to 10"):
        assert figure in text, figure
    assert re.search(r"more\s+than 5 s", (DOCS / "stores.md").read_text())
