"""The per-node caches (verified tokens, sessions, cookie readings) never serve a revoked
or expired credential: every hit is re-checked, and the bus invalidates them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from authstate import AuthState
from authstate._time import FrozenClock
from authstate.asgi.middleware import get_principal
from authstate.cookies import AUTH_COOKIE
from authstate.crypto.ids import hash_secret
from authstate.errors import AuthenticationError, StoreUnavailable
from authstate.modes.access_tokens import AccessTokens
from authstate.principal import Principal
from authstate.settings import Settings
from authstate.stores.memory import MemoryStore

pytestmark = pytest.mark.anyio

TOKEN_MODES = ("stateless", "hybrid")
ALL_MODES = ("stateless", "session", "hybrid")


class ControlledStore(MemoryStore):
    """A memory store whose bus can be declared down and whose session reads can be held."""

    def __init__(self, *, clock: FrozenClock) -> None:
        super().__init__(clock=clock)
        self.bus_up = True
        self.hold_reads: asyncio.Event | None = None
        self.reads = 0

    def bus_healthy_since(self) -> float | None:
        return super().bus_healthy_since() if self.bus_up else None

    async def get_session(self, key: str) -> Any:
        self.reads += 1
        record = await super().get_session(key)
        if self.hold_reads is not None:
            await self.hold_reads.wait()  # the record was read; the answer is late
        return record


Nodes = Callable[..., Awaitable[list[AuthState]]]


@pytest.fixture
async def nodes(clock: FrozenClock) -> AsyncIterator[Nodes]:
    """``await nodes(mode, n)``: n AuthStates sharing one store and its in-process bus."""
    started: list[AuthState] = []

    async def make(mode: str, count: int = 1, **overrides: Any) -> list[AuthState]:
        store = ControlledStore(clock=clock)
        settings = Settings.from_env({}, mode=mode, store="memory://", secret="s" * 32, **overrides)
        made = []
        for _ in range(count):
            auth = AuthState(settings, store=store, clock=clock)
            await auth.start()
            started.append(auth)
            made.append(auth)
        return made

    yield make
    for auth in started:
        await auth.stop()


def store_of(auth: AuthState) -> ControlledStore:
    store = auth.store
    assert isinstance(store, ControlledStore)
    return store


async def refused(auth: AuthState, value: str) -> bool:
    try:
        await auth.authenticate(value)
    except AuthenticationError:
        return True
    return False


# -- verified-token cache (stateless, hybrid) ---------------------------------------------------
@pytest.mark.parametrize("mode", TOKEN_MODES)
async def test_a_cached_token_is_refused_once_logged_out_on_another_node(
    nodes: Nodes, mode: str
) -> None:
    here, there = await nodes(mode, 2)
    issued = await here.login("u1", ["staff"])
    principal = await there.authenticate(issued.auth_value)
    await there.authenticate(issued.auth_value)
    assert len(there.tokens) == 1  # verified once, cached on the other node
    await here.logout(principal, refresh_value=issued.refresh_value)
    assert await refused(there, issued.auth_value)
    assert await refused(here, issued.auth_value)


@pytest.mark.parametrize("mode", TOKEN_MODES)
async def test_a_cached_token_is_refused_after_logout_everywhere_but_a_new_login_works(
    nodes: Nodes, mode: str
) -> None:
    here, there = await nodes(mode, 2)
    issued = await here.login("u1", [])
    await there.authenticate(issued.auth_value)
    await here.logout_everywhere("u1")
    assert await refused(there, issued.auth_value)
    fresh = await here.login("u1", [])
    assert (await there.authenticate(fresh.auth_value)).user_id == "u1"


@pytest.mark.parametrize("mode", TOKEN_MODES)
async def test_a_cached_token_expires_at_exactly_the_same_instant_as_an_uncached_one(
    nodes: Nodes, mode: str, clock: FrozenClock
) -> None:
    (auth,) = await nodes(mode)
    issued = await auth.login("u1", [])
    await auth.authenticate(issued.auth_value)  # cached from now on
    clock.advance(15 * 60 + 30 - 0.001)  # exp + leeway, just before
    await auth.authenticate(issued.auth_value)
    clock.advance(0.001)
    assert await refused(auth, issued.auth_value)
    auth.tokens.forget_all()
    assert await refused(auth, issued.auth_value)  # the cold path agrees


@pytest.mark.parametrize("mode", TOKEN_MODES)
async def test_a_cached_token_is_not_valid_before_its_time_if_the_clock_goes_back(
    nodes: Nodes, mode: str, clock: FrozenClock
) -> None:
    (auth,) = await nodes(mode)
    issued = await auth.login("u1", [])
    await auth.authenticate(issued.auth_value)
    clock.set(clock.now() - 31)  # before iat - leeway: the cold path refuses it
    assert await refused(auth, issued.auth_value)


@pytest.mark.parametrize("mode", TOKEN_MODES)
async def test_a_cached_token_dies_with_its_signing_key_even_before_its_exp(
    nodes: Nodes, mode: str, clock: FrozenClock
) -> None:
    (auth,) = await nodes(mode)
    issued = await auth.login("u1", [])
    await auth.authenticate(issued.auth_value)
    kid = auth.context.keys.ring.signing_key().kid
    await auth.store.retire_key(kid, clock.now() + 10)
    await auth.context.keys.rotate()  # the bus (KEYS) makes every node reload its ring
    await asyncio.sleep(0.01)
    await auth.authenticate(issued.auth_value)
    await auth.authenticate(issued.auth_value)  # cached again, bounded by the retirement
    clock.advance(10)
    await auth.authenticate(issued.auth_value)  # retire_after itself still verifies
    clock.advance(0.001)
    assert await refused(auth, issued.auth_value)


@pytest.mark.parametrize("mode", TOKEN_MODES)
async def test_under_fail_closed_a_stale_bus_refuses_even_cached_tokens(
    nodes: Nodes, mode: str
) -> None:
    (auth,) = await nodes(mode, fail_closed=True)
    issued = await auth.login("u1", [])
    await auth.authenticate(issued.auth_value)
    store_of(auth).bus_up = False
    with pytest.raises(StoreUnavailable):
        await auth.authenticate(issued.auth_value)


async def test_the_verified_token_cache_is_bounded(nodes: Nodes) -> None:
    (auth,) = await nodes("stateless")
    tokens = AccessTokens(auth.context, max_entries=3)
    issued = [await auth.login(f"u{i}", []) for i in range(10)]
    for credentials in issued:
        tokens.verify(credentials.auth_value)
    assert len(tokens) == 3
    for credentials in issued:  # evicted tokens verify again from scratch
        assert tokens.verify(credentials.auth_value).sub == credentials.principal.user_id


async def test_a_cached_principal_is_never_handed_to_another_factory(nodes: Nodes) -> None:
    (auth,) = await nodes("stateless")
    issued = await auth.login("u1", ["staff"])
    first = await auth.authenticate(issued.auth_value)

    def other(claims: Any) -> Principal:
        return Principal(user_id="other:" + claims.sub, roles=(), mode="stateless")

    assert auth.tokens.authenticate(issued.auth_value, other).user_id == "other:u1"
    assert (await auth.authenticate(issued.auth_value)) == first


# -- session cache ------------------------------------------------------------------------------
async def test_a_cached_session_is_refused_once_logged_out_on_another_node(nodes: Nodes) -> None:
    here, there = await nodes("session", 2)
    issued = await here.login("u1", [])
    principal = await there.authenticate(issued.auth_value)
    reads = store_of(there).reads
    await there.authenticate(issued.auth_value)
    assert store_of(there).reads == reads  # served from the cache
    await here.logout(principal)
    assert await refused(there, issued.auth_value)


async def test_a_cached_session_is_refused_after_logout_everywhere(nodes: Nodes) -> None:
    here, there = await nodes("session", 2)
    issued = await here.login("u1", [])
    await there.authenticate(issued.auth_value)
    await here.logout_everywhere("u1")
    assert await refused(there, issued.auth_value)


async def test_a_cached_session_revoked_by_handle_is_refused(nodes: Nodes) -> None:
    here, there = await nodes("session", 2)
    issued = await here.login("u1", [])
    other = await here.login("u1", [])
    principal = await there.authenticate(issued.auth_value)
    await there.authenticate(other.auth_value)
    assert principal.session is not None
    await here.revoke_session(await here.authenticate(other.auth_value), principal.session.id)
    assert await refused(there, issued.auth_value)
    await there.authenticate(other.auth_value)


async def test_a_cached_session_expires_when_idle_and_at_its_absolute_expiry(
    nodes: Nodes, clock: FrozenClock
) -> None:
    (auth,) = await nodes("session", idle_ttl="1h", session_ttl="3h", last_seen_interval="60s")
    idle = await auth.login("u1", [])
    active = await auth.login("u1", [])
    await auth.authenticate(idle.auth_value)
    await auth.authenticate(active.auth_value)  # both cached
    for _ in range(5):  # two and a half hours of activity, a request every half hour
        clock.advance(1800)
        await auth.authenticate(active.auth_value)
    assert await refused(auth, idle.auth_value)  # idle for more than an hour
    clock.advance(1800)
    assert await refused(auth, active.auth_value)  # absolute expiry, activity or not


async def test_a_session_read_racing_its_revocation_is_not_cached_past_the_revocation(
    nodes: Nodes, clock: FrozenClock
) -> None:
    here, there = await nodes("session", 2)
    issued = await here.login("u1", [])
    principal = await here.authenticate(issued.auth_value)
    store = store_of(there)
    store.hold_reads = asyncio.Event()
    pending = asyncio.create_task(there.authenticate(issued.auth_value))
    await asyncio.sleep(0)  # the read has happened, its answer is held
    await here.logout(principal)  # deletes the session; the bus drops it on every node
    store.hold_reads.set()
    store.hold_reads = None
    await asyncio.gather(pending, return_exceptions=True)
    # Long after the revoked handle left the revocation state, the store is what decides.
    clock.advance(16 * 60)
    there.context.revocation.prune()
    assert await refused(there, issued.auth_value)


async def test_with_the_bus_down_sessions_are_read_from_the_store_not_the_cache(
    nodes: Nodes,
) -> None:
    (auth,) = await nodes("session")
    issued = await auth.login("u1", [])
    await auth.authenticate(issued.auth_value)
    store = store_of(auth)
    store.bus_up = False
    await store.delete_session(hash_secret(issued.auth_value))  # no change published
    assert await refused(auth, issued.auth_value)


async def test_a_rotated_session_id_is_refused_on_every_node(nodes: Nodes) -> None:
    here, there = await nodes("session", 2)
    issued = await here.login("u1", [])
    await there.authenticate(issued.auth_value)
    mode = here.mode
    assert hasattr(mode, "rotate")
    rotated = await mode.rotate(issued.auth_value)
    assert await refused(there, issued.auth_value)
    assert await refused(here, issued.auth_value)
    assert (await there.authenticate(rotated.auth_value)).user_id == "u1"


# -- cookie readings in the middleware ----------------------------------------------------------
async def whoami(request: Request) -> Response:
    principal = get_principal(request)
    return JSONResponse({"user": principal.user_id if principal else None})


@pytest.mark.parametrize("mode", ALL_MODES)
async def test_the_same_cookie_header_is_anonymous_after_logout(mode: str) -> None:
    auth = AuthState(
        Settings.from_env({}, mode=mode, store="memory://", allowed_hosts="testserver")
    )
    app = Starlette(
        routes=[Route("/whoami", whoami), Mount("/auth", auth.routes())],
        middleware=[auth.middleware()],
    )
    await auth.start()
    try:
        issued = await auth.login("u1", [])
        cookie = f"{AUTH_COOKIE}={issued.auth_value}"
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
            for _ in range(2):  # the second one comes from every cache there is
                response = await client.get("/whoami", headers={"cookie": cookie})
                assert response.json() == {"user": "u1"}
            await auth.logout(issued.principal)
            response = await client.get("/whoami", headers={"cookie": cookie})
            assert response.json() == {"user": None}
    finally:
        await auth.stop()


# -- the middleware's synchronous path and forget() --------------------------------------------
async def test_a_stale_bus_sends_a_cached_session_back_to_the_store(nodes: Nodes) -> None:
    (auth,) = await nodes("session")
    issued = await auth.login("u1", [])
    assert auth.mode.authenticate_from_memory(issued.auth_value) is not None
    store_of(auth).bus_up = False
    assert auth.mode.authenticate_from_memory(issued.auth_value) is None  # must ask the store
    reads = store_of(auth).reads
    await auth.authenticate(issued.auth_value)
    assert store_of(auth).reads == reads + 1


@pytest.mark.parametrize("mode", ALL_MODES)
async def test_the_synchronous_path_refuses_what_authenticate_refuses(
    nodes: Nodes, mode: str
) -> None:
    here, there = await nodes(mode, 2)
    issued = await here.login("u1", [])
    principal = await there.authenticate(issued.auth_value)
    assert there.mode.authenticate_from_memory(issued.auth_value) == principal
    await here.logout_everywhere("u1")
    with pytest.raises(AuthenticationError):
        there.mode.authenticate_from_memory(issued.auth_value)
    with pytest.raises(AuthenticationError):
        there.mode.authenticate_from_memory("not a credential")


@pytest.mark.parametrize("mode", ALL_MODES)
async def test_a_forgotten_cookie_is_verified_again_from_scratch(nodes: Nodes, mode: str) -> None:
    (auth,) = await nodes(mode)
    issued = await auth.login("u1", [])
    await auth.authenticate(issued.auth_value)
    auth.mode.forget(issued.auth_value)
    if mode == "session":
        assert auth.mode.authenticate_from_memory(issued.auth_value) is None
    else:
        assert len(auth.tokens) == 0
    assert (await auth.authenticate(issued.auth_value)).user_id == "u1"
