"""The Redis store passes the store contract, sets real TTLs and keeps its pub/sub bus alive.

Every test uses its own random key prefix (``?prefix=``) on database 15 and deletes its keys
afterwards, so runs never see each other's data, even when two run at once.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import redis.asyncio as aioredis

from authstate.errors import ConfigurationError, StoreUnavailable
from authstate.stores._redis_layout import pointer
from authstate.stores.base import Change, ChangeKind, Store
from authstate.stores.redis import RedisStore
from tests.stores.contract import (
    DAY,
    T0,
    DataLossContract,
    StoreContract,
    eventually,
    family,
    session,
)

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


class TestRedisStore(StoreContract, DataLossContract):
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

    # Data loss under this test's own random prefix only (never the shared Redis as a whole).
    async def snapshot(self, store: Store) -> Any:
        assert isinstance(store, RedisStore)
        async with _client(store) as (client, prefix):
            return {key: await client.dump(key) async for key in client.scan_iter(f"{prefix}*")}

    async def restore(self, store: Store, copy: Any) -> None:
        await self.empty(store)
        async with _client(store) as (client, _):
            for key, value in copy.items():
                await client.restore(key, 0, value, replace=True)

    async def empty(self, store: Store) -> None:
        assert isinstance(store, RedisStore)
        async with _client(store) as (client, prefix):
            async for key in client.scan_iter(f"{prefix}*"):
                await client.delete(key)


@contextlib.asynccontextmanager
async def _client(store: RedisStore) -> AsyncIterator[tuple[Any, str]]:
    prefix = dict(parse_qsl(urlsplit(store.url).query))["prefix"]
    client = aioredis.Redis.from_url(store.url.split("?")[0])
    try:
        yield client, prefix
    finally:
        await client.aclose()


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


class _RoundTrips:
    """Counts the commands a store sends from now on, each one a round trip.

    Loading a script is not counted: the first run of a script (or the first after a
    ``SCRIPT FLUSH``) answers NOSCRIPT, loads it and runs it again.
    """

    def __init__(self, store: RedisStore) -> None:
        self.sent: Counter[str] = Counter()
        client = store._client
        send = client.execute_command

        async def counting(*args: Any, **options: Any) -> Any:
            self.sent[str(args[0])] += 1
            return await send(*args, **options)

        client.execute_command = counting

    def take(self) -> int:
        """Round trips since the last call."""
        count = self.sent.total() - 2 * self.sent["SCRIPT LOAD"]
        self.sent.clear()
        return count


# User ids a script can put in a hash tag (``_PLAIN_USER``) and ids tagged by their digest.
_PLAIN_USERS = ["u1", "a" * 64, "user@example.com", "A-Za-z0-9._@:+-"]
_DIGEST_USERS = ["a" * 65, "", "ü", "a b", "a}b", "a{b", "a/b=", "u1\n", "%", "a]"]


async def test_a_session_lookup_is_one_round_trip_when_the_user_id_is_plain(
    prefix_url: str,
) -> None:
    store = RedisStore(prefix_url)
    await store.open()
    try:
        now, users = time.time(), [*_PLAIN_USERS, *_DIGEST_USERS]
        for i, user in enumerate(users):
            await store.create_session(
                session(f"k{i}", user_id=user, created_at=now, idle_timeout=600)
            )
        trips = _RoundTrips(store)
        for i, user in enumerate(users):
            # The script spells the record's name as Layout does, or hands the pointer back.
            expected = 1 if user in _PLAIN_USERS else 2
            trips.take()
            found = await store.get_session(f"k{i}")
            assert found is not None and found.user_id == user
            assert trips.take() == expected, repr(user)
            await store.touch_session(f"k{i}", now + 60)
            assert trips.take() == expected, repr(user)
            touched = await store.get_session(f"k{i}")
            assert touched is not None and touched.last_seen_at == now + 60
    finally:
        await store.close()


async def test_any_handle_of_a_plain_user_is_found_on_the_server(prefix_url: str) -> None:
    # The script decodes the pointer's JSON itself; only a lone surrogate escape, which its
    # decoder refuses, costs the second round trip.
    handles = {"a\x00b": 1, "ünïcødé 🔑": 1, '"q"\\': 1, "\u2028\x7f\n": 1, "x" * 10_000: 1}
    handles |= {"\ud800": 2, "a\udc00b": 2}
    store = RedisStore(prefix_url)
    await store.open()
    try:
        trips = _RoundTrips(store)
        for i, (handle, expected) in enumerate(handles.items()):
            record = session(f"k{i}", handle=handle, created_at=time.time())
            await store.create_session(record)
            trips.take()
            assert await store.get_session(f"k{i}") == record
            assert trips.take() == expected, repr(handle[:12])
    finally:
        await store.close()


@pytest.mark.parametrize("user_id", ["u1", "a}b"])
async def test_a_pointer_to_a_record_with_another_key_finds_nothing(
    prefix_url: str, user_id: str
) -> None:
    store = RedisStore(prefix_url)
    await store.open()
    client = aioredis.Redis.from_url(prefix_url.split("?")[0])
    try:
        now = time.time()
        record = session("k0", user_id=user_id, created_at=now, idle_timeout=600)
        await store.create_session(record)
        # A stale or forged hint: "forged" points at the record, whose key is "k0".
        await client.set(store.layout.key_pointer("forged"), pointer(user_id, "h-k0"))
        assert await store.get_session("forged") is None
        await store.touch_session("forged", now + 60)
        assert await store.get_session("k0") == record  # last_seen_at untouched
    finally:
        await client.aclose()
        await store.close()


async def test_a_lost_swap_keeps_the_successor_pointer_the_winner_needs(prefix_url: str) -> None:
    # Two nodes rotate one token at once: both claim the successor's pointer, and the one
    # whose claim wrote it may lose the swap. It must not drop the pointer then, or the
    # successor the winner handed out would find nothing.
    store = RedisStore(prefix_url)
    await store.open()
    client = aioredis.Redis.from_url(prefix_url.split("?")[0])
    try:
        await store.create_session(family("r0", created_at=time.time()))
        found = await store.find_refresh("r0")
        assert found is not None
        assert await store.swap_refresh_key(found, "s0", now=time.time()) is not None
        # The loser's claim is the one that writes the pointer.
        await client.delete(store.layout.key_pointer("s0"))
        assert await store.swap_refresh_key(found, "s0", now=time.time()) is None
        record = await store.get_session("s0")
        assert record is not None and record.handle == "h-r0"
        # A loser whose successor is not the family's drops its claim.
        assert await store.swap_refresh_key(found, "other", now=time.time()) is None
        assert await client.get(store.layout.key_pointer("other")) is None
    finally:
        await client.aclose()
        await store.close()


async def test_lookups_still_work_after_the_server_forgets_its_scripts(prefix_url: str) -> None:
    store = RedisStore(prefix_url)
    await store.open()
    client = aioredis.Redis.from_url(prefix_url.split("?")[0])
    try:
        now = time.time()
        record = session("k0", created_at=now, idle_timeout=600)
        await store.create_session(record)
        assert await store.get_session("k0") == record  # the scripts are loaded now
        # As after a restart or a failover. Every client of this server reloads on NOSCRIPT.
        await client.script_flush()
        assert await store.get_session("k0") == record
        await client.script_flush()
        await store.touch_session("k0", now + 60)
        touched = await store.get_session("k0")
        assert touched is not None and touched.last_seen_at == now + 60
    finally:
        await client.aclose()
        await store.close()


async def test_pub_sub_delivers_every_change_to_another_node_in_order(prefix_url: str) -> None:
    writer, reader = RedisStore(prefix_url), RedisStore(prefix_url)
    await writer.open()
    await reader.open()
    try:
        received: list[int] = []
        await reader.listen(lambda change: received.append(change.seq))
        assert reader.bus_healthy_since() is not None
        published = []
        for i in range(20):
            change = await writer.publish(Change(ChangeKind.SID, f"s{i}", until=T0))
            published.append(change.seq)
            # A hang guard, not a latency claim: the suite asserts no wall time (the
            # publish-to-delivery latency is the revocation table of `authstate bench`).
            await eventually(lambda seq=change.seq: seq in received, 30.0)
        assert [seq for seq in received if seq in published] == published
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
