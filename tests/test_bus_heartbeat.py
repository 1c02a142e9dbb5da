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


async def oldest_view(store: str, seconds: float) -> float:
    """The oldest a healthy node's view got (seconds) over ``seconds``, bound 1 s."""
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
        oldest = 0.0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            since = auth.store.bus_healthy_since()
            assert since is not None, "the bus dropped out with nothing wrong"
            oldest = max(oldest, auth.clock.monotonic() - since)
            await asyncio.sleep(0.005)
        return oldest
    finally:
        await auth.stop()


# Half the bound: a view that old still leaves the other half for a slow answer. Before,
# the view aged to the full bound (1 s heartbeat) before each proof of life.
async def test_a_healthy_redis_bus_stays_well_within_a_one_second_bound(
    redis_store: str,
) -> None:
    assert await oldest_view(redis_store, 3.0) < 0.5


async def test_a_healthy_postgresql_bus_stays_well_within_a_one_second_bound(
    postgres_store: str,
) -> None:
    assert await oldest_view(postgres_store, 3.0) < 0.5
