"""examples/api_client.py signs in at /auth/token, sends Bearer, refreshes on 401 in hybrid
mode, and signs out; in process with a frozen clock, and as a real command against a real
``authstate serve``."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from authstate import AuthState, FrozenClock, Settings
from authstate.server.app import create_app
from tests.cli.serve_process import clean_env, serve
from tests.examples.conftest import BASE, EXAMPLES, PASSWORD

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["session", "hybrid"])
async def auth(request: pytest.FixtureRequest) -> AsyncIterator[tuple[AuthState, FrozenClock]]:
    clock = FrozenClock()
    settings = Settings.from_env(
        {},
        mode=request.param,
        store="memory://",
        allowed_hosts="testserver",
        transports="cookie,bearer",
    )
    async with AuthState(settings, clock=clock) as started:
        await started.accounts.add_user("alice", PASSWORD, ("staff",))
        yield started, clock


async def test_the_client_signs_in_calls_refreshes_and_signs_out(
    auth: tuple[AuthState, FrozenClock],
    example: Callable[[str], ModuleType],
    tmp_path: Path,
) -> None:
    state, clock = auth
    module = example("api_client")
    tokens = tmp_path / "tokens.json"
    transport = httpx.ASGITransport(app=create_app(auth=state))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        client = module.ApiClient(http, tokens)
        with pytest.raises(module.SignedOut):
            await client.login("alice", "not the password")
        await client.login("alice", PASSWORD)
        assert stat.S_IMODE(tokens.stat().st_mode) == 0o600
        me = await client.request("GET", "/auth/me")
        assert me.json()["user"]["username"] == "alice"
        assert len(http.cookies.jar) == 0  # the token endpoint set no cookie
        first = tokens.read_text()
        if state.settings.mode == "hybrid":
            # Past the access token's life: the client refreshes once and carries on.
            clock.advance(state.settings.access_ttl_seconds + state.settings.leeway_seconds + 1)
            assert (await client.request("GET", "/auth/me")).status_code == 200
            assert tokens.read_text() != first
        await client.logout()
        assert not tokens.exists()
        stale = await http.get("/auth/me", headers={"Authorization": "Bearer " + _access(first)})
        assert stale.status_code == 401
        with pytest.raises(module.SignedOut):
            await client.request("GET", "/auth/me")


def _access(saved: str) -> str:
    import json

    value: str = json.loads(saved)["access_token"]
    return value


def test_the_command_against_a_real_server(tmp_path: Path) -> None:
    """`python examples/api_client.py` against `authstate serve --demo` with the bearer
    transport: login, me, sessions, logout, then me fails."""
    env = clean_env(AUTHSTATE_TRANSPORTS="cookie,bearer")
    with serve(tmp_path, "--mode", "hybrid", "--demo", "--store", "memory://", env=env) as served:
        password = served.demo_passwords()["alice"]
        tokens = tmp_path / "tokens.json"

        def command(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, str(EXAMPLES / "api_client.py"), "--server", served.url,
                 "--tokens", str(tokens), *args],
                input=stdin, capture_output=True, text=True, timeout=60, check=False,
                env={k: v for k, v in os.environ.items() if not k.startswith("AUTH")},
            )  # fmt: skip

        login = command("login", "alice", "--password-stdin", stdin=password + "\n")
        assert login.returncode == 0, login.stderr
        me = command("me")
        assert me.returncode == 0, me.stderr
        assert '"username": "alice"' in me.stdout
        sessions = command("sessions")
        assert sessions.returncode == 0 and '"current": true' in sessions.stdout
        assert command("logout").returncode == 0
        after = command("me")
        assert after.returncode == 1
        assert "not signed in" in after.stderr
