"""The Redis store passes the store contract, sets real TTLs and keeps its pub/sub bus alive.

Every test uses its own random key prefix (``?prefix=``) on database 15 and deletes its keys
afterwards, so runs never see each other's data, even when two run at once.
"""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis

from authstate.errors import ConfigurationError, StoreUnavailable
from authstate.stores.base import Change, ChangeKind, Store
from authstate.stores.redis import RedisStore
from tests.stores.contract import DAY, T0, StoreContract, eventually, session

pytestmark = pytest.mark.anyio


def prefixed(url: str, prefix: str) -> str:
    separator = "&" if urlsplit(url).query else "?"
    return f"{url}{separator}prefix={prefix}"


async def delete_prefix(url: str, prefix: str) -> None:
    """Remove every key under ``prefix`` (our own random prefix, never caller data)."""
    client = aioredis.Redis.from_url(url.split("?")[0])
    try:
        async for key in client.scan_iter(match=f"{prefix}*", count=1000):
            await client.delete(key)
    finally:
        await client.aclose()


@pytest.fixture
async def prefix_url(redis_url: str) -> AsyncIterator[str]:
    prefix = f"t{secrets.token_hex(6)}:"
    yield prefixed(redis_url, prefix)
    await delete_prefix(redis_url, prefix)


class TestRedisStore(StoreContract):
    propagation_bound = 1.0  # measured in milliseconds; see the latency test below

    @pytest.fixture
    async def store(self, prefix_url: str) -> AsyncIterator[Store]:
        store = RedisStore(prefix_url)
        await store.open()
        yield store
        await store.close()

    async def second_store(self, store: Store) -> Store:
        assert isinstance(store, RedisStore)
        other = RedisStore(store.url)
        await other.open()
        return other


def _future(seconds: float) -> float:
    # Native TTLs run on the Redis server's clock: these tests use real times.
    return time.time() + seconds


async def test_sessions_carry_a_native_ttl_at_their_death(prefix_url: str) -> None:
    store = RedisStore(prefix_url)
    await store.open()
    client = aioredis.Redis.from_url(prefix_url.split("?")[0])
    try:
        now = time.time()
        await store.create_session(session("k", created_at=now, expires_at=now + DAY))
        await store.create_session(session("idle", created_at=now, idle_timeout=600))
        layout = store.layout
        absolute = await client.pexpiretime(layout.session("u1", "h-k"))
        idle = await client.pexpiretime(layout.session("u1", "h-idle"))
        assert abs(absolute / 1000 - (now + DAY)) < 1
        assert abs(idle / 1000 - (now + 600)) < 1
        # Activity pushes the idle death forward, never past the absolute expiry.
        await store.touch_session("idle", now + 300)
        moved = await client.pexpiretime(layout.session("u1", "h-idle"))
        assert abs(moved / 1000 - (now + 900)) < 1
        for name in (layout.key_pointer("k"), layout.handle_pointer("h-k")):
            assert abs(await client.pexpiretime(name) / 1000 - (now + DAY)) < 1
    finally:
        await client.aclose()
        await store.close()


async def test_pub_sub_reaches_another_node_within_a_second(prefix_url: str) -> None:
    writer, reader = RedisStore(prefix_url), RedisStore(prefix_url)
    await writer.open()
    await reader.open()
    try:
        received: dict[int, float] = {}
        await reader.listen(lambda change: received.setdefault(change.seq, time.perf_counter()))
        assert reader.bus_healthy_since() is not None
        latencies = []
        for i in range(20):
            sent = time.perf_counter()
            change = await writer.publish(Change(ChangeKind.SID, f"s{i}", until=T0))
            await eventually(lambda seq=change.seq: seq in received, 1.0)
            latencies.append(received[change.seq] - sent)
        latencies.sort()
        print(
            f"\nRedis pub/sub publish->delivery: p50 {latencies[10] * 1000:.2f} ms,"
            f" max {latencies[-1] * 1000:.2f} ms (20 changes)"
        )
        assert latencies[-1] < 1.0
    finally:
        await writer.close()
        await reader.close()


async def test_a_killed_subscriber_reconnects_and_catches_up(prefix_url: str) -> None:
    writer, reader = RedisStore(prefix_url), RedisStore(prefix_url)
    await writer.open()
    await reader.open()
    admin = aioredis.Redis.from_url(prefix_url.split("?")[0], decode_responses=True)
    try:
        received: list[Change] = []
        await reader.listen(received.append)
        # Only our bus connection: it is named after the test's own prefix.
        name = f"{reader.prefix}bus"
        ids = [c["id"] for c in await admin.client_list(_type="pubsub") if c["name"] == name]
        assert len(ids) == 1
        await admin.client_kill_filter(_id=ids[0])
        killed_at = time.monotonic()
        missed = await writer.publish(Change(ChangeKind.JTI, "while-down", until=T0))
        await eventually(lambda: missed in received, 5.0)
        await eventually(lambda: (reader.bus_healthy_since() or 0) >= killed_at, 5.0)
        print(f"\nRedis bus healthy again {time.monotonic() - killed_at:.3f} s after the kill")
        later = await writer.publish(Change(ChangeKind.JTI, "after", until=T0))
        await eventually(lambda: later in received, 1.0)
        assert [c.seq for c in received] == [missed.seq, later.seq]
    finally:
        await admin.aclose()
        await writer.close()
        await reader.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_an_unreachable_server_is_store_unavailable() -> None:
    store = RedisStore(f"redis://127.0.0.1:{_closed_port()}/0")
    with pytest.raises(StoreUnavailable):
        await store.open()
    with pytest.raises(StoreUnavailable):
        await store.get_session("k")


@pytest.mark.parametrize(
    "url",
    ["redis://h/0?prefix=a{b", "redis://h/0?prefix=}", "redis+cluster://h:7000/3", "http://h/"],
)
def test_unusable_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError):
        RedisStore(url)


async def test_memory_per_stored_session(prefix_url: str) -> None:
    """Bytes per session for the closing note: every key a session adds, as Redis counts it."""
    store = RedisStore(prefix_url)
    await store.open()
    client = aioredis.Redis.from_url(prefix_url.split("?")[0])
    try:
        now, count = time.time(), 1000
        before = (await client.info("memory"))["used_memory"]
        for i in range(count):
            await store.create_session(
                session(
                    secrets.token_hex(32),
                    handle=secrets.token_urlsafe(16),
                    user_id=f"user{i % 100}",
                    created_at=now,
                    expires_at=now + 7 * DAY,
                    idle_timeout=DAY,
                    roles=("user",),
                    user_agent="Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0",
                    ip="203.0.113.9",
                )
            )
        after = (await client.info("memory"))["used_memory"]
        record = await store.list_sessions("user1")
        layout = store.layout
        sample = record[0]
        keys = [
            layout.session(sample.user_id, sample.handle),
            layout.key_pointer(sample.key),
            layout.handle_pointer(sample.handle),
        ]
        own = sum([await client.memory_usage(key) or 0 for key in keys])
        per_session = (after - before) / count
        print(
            f"\nRedis memory per session: {per_session:.0f} bytes (INFO used_memory delta over"
            f" {count}); its own keys {own} bytes (MEMORY USAGE of record + 2 pointers)"
        )
        assert 0 < own < 2000
    finally:
        await client.aclose()
        await store.close()
