"""examples/resource_service.py trusts the reference server's tokens through its JWKS only."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from starlette.applications import Starlette

from authstate import AuthState, Settings, Verifier
from authstate.cookies import AUTH_COOKIE
from authstate.server.app import create_app
from tests.cli.serve_process import run_cli, serve
from tests.examples.conftest import BASE, PASSWORD

pytestmark = pytest.mark.anyio
JWKS_PATH = "/.well-known/jwks.json"


class SteppedClock:
    """The real wall clock (token times), with a monotonic clock the test can move forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic() + self.offset


@dataclass
class Setup:
    auth: AuthState  # the auth server's
    server: httpx.AsyncClient  # talks to the reference server
    service: httpx.AsyncClient  # talks to the resource service
    service_app: Starlette
    verifier: Verifier
    clock: SteppedClock

    async def token(self, name: str) -> str:
        """Sign in at the auth server; the auth cookie's value is the access JWT."""
        self.server.cookies.clear()
        response = await self.server.post(
            "/auth/login", json={"username": name, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        value = self.server.cookies.get(AUTH_COOKIE)
        assert value
        return value

    async def reports(self, token: str) -> httpx.Response:
        return await self.service.get("/reports", headers={"Authorization": f"Bearer {token}"})


@pytest.fixture(params=["stateless", "hybrid"])
async def setup(
    request: pytest.FixtureRequest, example: Callable[[str], ModuleType]
) -> AsyncIterator[Setup]:
    auth = AuthState(
        Settings.from_env({}, mode=request.param, store="memory://", allowed_hosts="testserver")
    )
    module = example("resource_service")
    async with auth:
        await auth.accounts.add_user("alice", PASSWORD, ("staff",))
        await auth.accounts.add_user("bob", PASSWORD)
        server = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(auth=auth)), base_url=BASE
        )
        clock = SteppedClock()
        # The verifier fetches the JWKS over HTTP, here through the ASGI transport.
        verifier = Verifier.from_jwks(BASE + JWKS_PATH, client=server, clock=clock)
        service_app = module.create_app(verifier)
        service = httpx.AsyncClient(transport=httpx.ASGITransport(app=service_app), base_url=BASE)
        async with server, service:
            yield Setup(auth, server, service, service_app, verifier, clock)


async def test_a_staff_token_from_the_auth_server_is_accepted(setup: Setup) -> None:
    """alice's access JWT, verified with the published keys alone: 200 with her user id."""
    response = await setup.reports(await setup.token("alice"))
    assert response.status_code == 200
    me = await setup.server.get("/auth/me")
    assert response.json()["user_id"] == me.json()["user"]["id"]


async def test_missing_forged_and_unprivileged_tokens_are_refused(setup: Setup) -> None:
    """No token or a bad one: 401 with WWW-Authenticate; bob (no staff role): 403."""
    token = await setup.token("alice")
    header, payload, signature = token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    missing = await setup.service.get("/reports")
    assert (missing.status_code, missing.headers["www-authenticate"]) == (401, "Bearer")
    assert (await setup.reports(f"{header}.{payload}.{flipped}")).status_code == 401
    assert (await setup.reports("not-a-jwt")).status_code == 401
    assert (await setup.reports(await setup.token("bob"))).status_code == 403


async def test_the_auth_cookie_is_accepted_too_but_not_beside_a_bearer_token(
    setup: Setup,
) -> None:
    """A browser on the auth server's site sends the cookie: accepted as the header is; a
    request carrying both is refused (400), whichever is valid, as the auth server does."""
    alice = await setup.token("alice")
    bob = await setup.token("bob")
    cookie = {"Cookie": f"{AUTH_COOKIE}={alice}"}
    by_cookie = await setup.service.get("/reports", headers=cookie)
    assert by_cookie.status_code == 200
    both = await setup.service.get("/reports", headers={**cookie, "Authorization": f"Bearer {bob}"})
    assert (both.status_code, both.json()["error"]) == (400, "bad_request")
    tossed = await setup.service.get(
        "/reports", headers={"Cookie": f"{AUTH_COOKIE}={alice}; {AUTH_COOKIE}={bob}"}
    )
    assert tossed.status_code == 401


async def test_after_a_key_rotation_the_verifier_fetches_the_new_key(setup: Setup) -> None:
    """A token signed by the new key is accepted once the refetch interval (10 s) allows;
    tokens of the old key keep verifying. docs/deploy.md's rotation runbook relies on this."""
    old = await setup.token("alice")
    assert (await setup.reports(old)).status_code == 200
    await setup.auth.context.keys.rotate()
    new = await setup.token("alice")
    # Within 10 s of the last fetch an unknown kid does not trigger a fetch (flood guard).
    assert (await setup.reports(new)).status_code == 401
    setup.clock.offset += 11
    assert (await setup.reports(new)).status_code == 200
    assert (await setup.reports(old)).status_code == 200
    assert setup.verifier.fetch_count == 2


@pytest.mark.slow
async def test_against_a_real_authstate_serve(
    example: Callable[[str], ModuleType], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`authstate serve` on a port, the example's own module-level verifier fetching over HTTP."""
    store = f"sqlite:///{tmp_path / 'auth.db'}"
    added = run_cli("users", "add", "carol", "--role", "staff", "--password-stdin",
                    "--store", store, stdin=PASSWORD + "\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    with serve(tmp_path, "--mode", "stateless", "--store", store) as served:
        monkeypatch.setenv("AUTH_JWKS_URL", served.url + JWKS_PATH)
        module = example("resource_service")
        async with httpx.AsyncClient(base_url=served.url) as http:
            login = await http.post("/auth/login", json={"username": "carol", "password": PASSWORD})
            token = login.cookies.get(AUTH_COOKIE)
        assert token
        transport = httpx.ASGITransport(app=module.app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as service:
            response = await service.get("/reports", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


async def lifespan_startup(app: object) -> str:
    """Run an ASGI app's startup, then its shutdown; return how the startup ended."""
    queue: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    await queue.put({"type": "lifespan.startup"})
    sent: list[str] = []

    async def send(message: dict[str, str]) -> None:
        sent.append(message["type"])
        if message["type"].startswith("lifespan.startup"):
            await queue.put({"type": "lifespan.shutdown"})

    with contextlib.suppress(Exception):
        await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, queue.get, send)  # type: ignore[operator]
    return sent[0]


async def test_the_service_fails_at_start_when_the_keys_cannot_be_fetched(
    example: Callable[[str], ModuleType], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong JWKS URL stops the deployment at start-up, not at the first request."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    monkeypatch.setenv("AUTH_JWKS_URL", f"http://127.0.0.1:{closed_port}{JWKS_PATH}")
    assert await lifespan_startup(example("resource_service").app) == "lifespan.startup.failed"


async def test_the_service_starts_when_the_keys_can_be_fetched(setup: Setup) -> None:
    """The same lifespan succeeds against the reference server."""
    assert await lifespan_startup(setup.service_app) == "lifespan.startup.complete"
