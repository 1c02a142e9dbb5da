"""A healthy bus never looks stale, whatever the staleness bound.

The Redis and PostgreSQL buses prove themselves alive every heartbeat. With a fixed 1 s
heartbeat and ``AUTHSTATE_MAX_STALENESS=1s`` a node's view was about 1 s old just before
each proof, so a fail-closed node answered 503 now and then with nothing wrong (seen in
tests/multinode/test_faults.py on a busy machine). The heartbeat is now a quarter of the
bound (at most 1 s).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

from authstate import AuthState
from authstate.settings import Settings
from tests.stores.test_redis import delete_prefix, prefixed

pytestmark = [pytest.mark.anyio, pytest.mark.services]


@pytest.fixture
async def redis_store(redis_url: str) -> AsyncIterator[str]:
    prefix = f"t{secrets.token_hex(6)}:"
    yield prefixed(redis_url, prefix)
    await delete_prefix(redis_url, prefix)


@pytest.fixture
async def postgres_store(postgres_url: str) -> AsyncIterator[str]:
    name = f"authstate_test_{secrets.token_hex(6)}"
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(f"CREATE SCHEMA {name}")
        yield f"{postgres_url}?search_path={name}"
    finally:
        await conn.execute(f"DROP SCHEMA {name} CASCADE")
        await conn.close()


async def watched(store: str, seconds: float) -> str:
    """Run a node with a 1 s staleness bound for ``seconds``, checking that its bus never
    drops out; return how its store says changes travel (the heartbeat included)."""
    settings = Settings.from_env(
        {
            "AUTHSTATE_MODE": "session",
            "AUTHSTATE_STORE": store,
            "AUTHSTATE_SECRET": "s" * 40,
            "AUTHSTATE_MAX_STALENESS": "1s",
        }
    )
    auth = AuthState(settings)
    await auth.start()
    try:
        await auth.health()  # healthy to begin with
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert auth.store.bus_healthy_since() is not None, "the bus dropped out"
            await asyncio.sleep(0.005)
        return auth.store.describe_bus()
    finally:
        await auth.stop()


# The heartbeat is a quarter of the bound, so a view is at most a quarter old when all is
# well, leaving three quarters for a slow answer (before, a 1 s heartbeat let it age to the
# full bound). Asserted on the configuration the store reports, not on wall time.
async def test_a_healthy_redis_bus_proves_itself_four_times_per_bound(redis_store: str) -> None:
    assert await watched(redis_store, 3.0) == "pub/sub, health check every 0.25 s"


async def test_a_healthy_postgresql_bus_proves_itself_four_times_per_bound(
    postgres_store: str,
) -> None:
    assert await watched(postgres_store, 3.0) == "LISTEN/NOTIFY, catch-up every 0.25 s"
