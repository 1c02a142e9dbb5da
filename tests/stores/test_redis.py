"""The Redis store passes the store contract, sets real TTLs and keeps its pub/sub bus alive.

Every test uses its own random key prefix (``?prefix=``) on database 15 and deletes its keys
afterwards, so runs never see each other's data, even when two run at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import redis.asyncio as aioredis
import redis.exceptions

from authstate.errors import ConfigurationError, Conflict, StoreUnavailable
from authstate.stores import _redis_migrate
from authstate.stores._redis_layout import Layout, key_bytes, key_text
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


@pytest.fixture
async def store(prefix_url: str) -> AsyncIterator[RedisStore]:
    """An open store under the test's own prefix (the contract's ``store`` too)."""
    store = RedisStore(prefix_url)
    await store.open()
    yield store
    await store.close()


@pytest.fixture
async def client(prefix_url: str) -> AsyncIterator[Any]:
    """A plain client of the test's Redis server, to see (or change) what the store wrote."""
    client = aioredis.Redis.from_url(prefix_url.split("?")[0])
    yield client
    await client.aclose()


class TestRedisStore(StoreContract, DataLossContract):
    @pytest.fixture
    def store(self, store: RedisStore) -> RedisStore:
        """The module's ``store`` (the contract's base class only declares one)."""
        return store

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


def _key_entry(layout: Layout, key: str) -> tuple[bytes, bytes]:
    """The key bucket and field of ``key``'s entry (its value: the user's tag)."""
    stored = key_bytes(key)
    return layout.key_bucket(stored), stored


def _handle_entry(layout: Layout, handle: str) -> tuple[bytes, bytes]:
    """The handle bucket and field of ``handle``'s entry."""
    stored = key_bytes(handle)
    return layout.handle_bucket(stored), stored


def _future(seconds: float) -> float:
    # Native TTLs run on the Redis server's clock: these tests use real times.
    return time.time() + seconds


async def test_the_purge_index_holds_each_user_once_at_its_earliest_death(
    store: RedisStore, client: Any
) -> None:
    now = time.time()
    await store.create_session(session("k", created_at=now, expires_at=now + DAY))
    await store.create_session(session("idle", created_at=now, idle_timeout=600))
    layout = store.layout
    shard = layout.due(layout.tag("u1"))
    assert await client.zrange(shard, 0, -1, withscores=True) == [(b"u1", now + 600)]
    # A purge before that moment finds the user and keeps it indexed as it was.
    await store.purge_expired(now + 300)
    assert await client.zscore(shard, b"u1") == now + 600
    # After it: the idle session goes, the user is indexed at the next death.
    assert await store.purge_expired(now + 601) == 1
    assert await client.zscore(shard, b"u1") == now + DAY
    assert [r.key for r in await store.list_sessions("u1")] == ["k"]
    assert await store.purge_expired(now + DAY) == 1
    assert await client.zscore(shard, b"u1") is None
    assert await client.exists(layout.records("u1")) == 0
    assert await client.hget(*_key_entry(layout, "k")) is None
    assert await client.hget(*_handle_entry(layout, "h-k")) is None


async def test_a_consumed_refresh_key_expires_with_its_family(
    store: RedisStore, client: Any
) -> None:
    now = time.time()
    await store.create_session(family("r0", created_at=now, expires_at=now + DAY))
    found = await store.find_refresh("r0")
    assert found is not None
    assert await store.swap_refresh_key(found, "r1", now=now) is not None
    consumed = store.layout.consumed(key_bytes("r0"))
    assert abs(await client.pexpiretime(consumed) / 1000 - (now + DAY)) < 1
    assert await client.hget(*_key_entry(store.layout, "r0")) is None


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


# User ids used as they are in a hash tag (``_PLAIN_USER``) and ids tagged by their digest.
_PLAIN_USERS = ["u1", "a" * 64, "user@example.com", "A-Za-z0-9._@:+-"]
_DIGEST_USERS = ["a" * 65, "", "ü", "a b", "a}b", "a{b", "a/b=", "u1\n", "%", "a]"]


async def test_a_session_lookup_and_touch_are_one_round_trip(store: RedisStore) -> None:
    now, users = time.time(), [*_PLAIN_USERS, *_DIGEST_USERS]
    handles = ["a\x00b", "ünïcødé 🔑", '"q"\\', "\u2028\x7f\n", "x" * 10_000, "\ud800"]
    for i, user in enumerate(users):
        handle = handles[i % len(handles)] + str(i)
        await store.create_session(
            session(f"k{i}", handle=handle, user_id=user, created_at=now, idle_timeout=600)
        )
    trips = _RoundTrips(store)
    for i, user in enumerate(users):
        trips.take()
        found = await store.get_session(f"k{i}")
        assert found is not None and found.user_id == user
        assert trips.take() == 1, repr(user)
        await store.touch_session(f"k{i}", now + 60)
        assert trips.take() == 1, repr(user)
        touched = await store.get_session(f"k{i}")
        assert touched is not None and touched.last_seen_at == now + 60


@pytest.mark.parametrize("user_id", ["u1", "a}b"])
async def test_a_bucket_entry_naming_a_record_with_another_key_finds_nothing(
    store: RedisStore, client: Any, user_id: str
) -> None:
    now = time.time()
    record = session("k0", user_id=user_id, created_at=now, idle_timeout=600)
    await store.create_session(record)
    # A stale or forged hint: "forged" names the user, whose record has the key "k0".
    await client.hset(*_key_entry(store.layout, "forged"), store.layout.tag(user_id))
    assert await store.get_session("forged") is None
    assert await store.find_refresh("forged") is None
    assert await store.touch_session("forged", now + 60) is False
    assert await store.get_session("k0") == record  # last_seen_at untouched


async def test_a_lost_swap_keeps_the_successor_entry_the_winner_needs(
    store: RedisStore, client: Any
) -> None:
    # Two nodes rotate one token at once: both claim the successor's bucket entry, and the
    # one whose claim wrote it may lose the swap. It must not drop the entry then, or the
    # successor the winner handed out would find nothing.
    await store.create_session(family("r0", created_at=time.time()))
    found = await store.find_refresh("r0")
    assert found is not None
    assert await store.swap_refresh_key(found, "s0", now=time.time()) is not None
    # The loser's claim is the one that writes the entry.
    await client.hdel(*_key_entry(store.layout, "s0"))
    assert await store.swap_refresh_key(found, "s0", now=time.time()) is None
    record = await store.get_session("s0")
    assert record is not None and record.handle == "h-r0"
    # A loser whose successor is not the family's drops its claim.
    assert await store.swap_refresh_key(found, "other", now=time.time()) is None
    assert await client.hget(*_key_entry(store.layout, "other")) is None


def test_keys_are_stored_reversibly() -> None:
    digest = "0123456789abcdef" * 4
    assert key_bytes(digest) == bytes.fromhex(digest)
    handle = "A" * 22  # a canonical base64url id of 16 bytes
    assert key_bytes(handle) == bytes(16)
    texts = ["", "k", "x" * 31, "x" * 15, "\ud800", "ÿ" * 16, "AB" * 11, digest.upper()]
    for key in [digest, handle, *texts]:
        stored = key_bytes(key)
        assert key_text(stored) == key
        assert len(stored) not in (16, 32) or key in (digest, handle)


async def test_lookups_still_work_after_the_server_forgets_its_scripts(
    store: RedisStore, client: Any
) -> None:
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


async def test_memory_per_stored_session(store: RedisStore, client: Any) -> None:
    """Bytes per session for the closing note: every key a session adds, as Redis counts it."""
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
    layout = store.layout
    sample = (await store.list_sessions("user1"))[0]
    own = await client.memory_usage(layout.records("user1")) or 0
    print(
        f"\nRedis memory per session: {(after - before) / count:.0f} bytes (INFO used_memory"
        f" delta over {count}); user1's records {own} bytes for"
        f" {len(await store.list_sessions('user1'))} sessions; its key bucket entry:"
        f" {await client.hget(*_key_entry(layout, sample.key))!r}"
    )
    assert 0 < own < 20_000


async def _write_layout_1(client: Any, prefix: str, record: Any) -> None:
    """A record as authstate 0.1 stored it (session layout 1), plain user ids only."""
    head = f"{prefix}{{u:{record.user_id}}}:".encode()
    fields = {
        "key": record.key,
        "handle": record.handle,
        "user_id": record.user_id,
        "kind": record.kind,
        "created_at": repr(record.created_at),
        "last_seen_at": repr(record.last_seen_at),
        "expires_at": repr(record.expires_at),
        "idle_timeout": repr(record.idle_timeout),
        "roles": json.dumps(list(record.roles)),
        "user_agent": record.user_agent,
        "ip": record.ip,
        "data": json.dumps(record.data),
        "generation": str(record.generation),
        "ins": "1",
    }
    if record.previous_key is not None:
        fields |= {"previous_key": record.previous_key, "rotated_at": repr(record.rotated_at)}
    ref = json.dumps([record.user_id, record.handle])
    await client.hset(head + b"s:" + record.handle.encode(), mapping=fields)
    await client.zadd(head + b"i", {record.handle: record.created_at})
    await client.set(f"{prefix}k:{record.key}", ref)
    if record.previous_key is not None:
        await client.set(f"{prefix}k:{record.previous_key}", ref)
    await client.set(f"{prefix}h:{record.handle}", record.user_id)
    await client.zadd(f"{prefix}{{e3}}:exp", {ref: record.expires_at})


async def test_a_store_of_layout_1_is_refused_until_migrated(prefix_url: str, client: Any) -> None:
    prefix = dict(parse_qsl(urlsplit(prefix_url).query))["prefix"]
    now = time.time()
    plain = session("k0", created_at=now, data={"a": [1]}, roles=("staff",))
    rotated = family("r1", handle="h-fam", created_at=now, previous_key="r0", rotated_at=now)
    other = session("k2", user_id="u2", created_at=now)
    for record in (plain, rotated, other):
        await _write_layout_1(client, prefix, record)
    refused = RedisStore(prefix_url)
    with pytest.raises(ConfigurationError, match="migrate=1"):
        await refused.open()
    store = RedisStore(prefixed(prefix_url, "x").replace("prefix=x", "migrate=1"))
    assert store._migrate and store.prefix == prefix
    await store.open()
    try:
        assert await store.get_session("k0") == plain
        assert await store.get_session("r1") == rotated
        assert await store.get_session("k2") == other
        # The family's consumed key still finds it: presenting it is reuse.
        found = await store.find_refresh("r0")
        assert found is not None and found.key == "r1"
        assert sorted(r.key for r in await store.list_sessions("u1")) == ["k0", "r1"]
        leftovers = [k async for k in client.scan_iter(f"{prefix}*") if b":s:" in k]
        assert leftovers == []
        assert await client.get(f"{prefix}k:k0") is None
    finally:
        await store.close()
    # Migrated: a plain URL opens it now.
    again = RedisStore(prefix_url)
    await again.open()
    await again.close()


async def test_a_migration_rerun_after_a_partial_import_migrates_without_conflicts(
    prefix_url: str, client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # On a cluster the import writes master by master: a run interrupted between two
    # leaves some bucket entries (naming the user) and no records yet. The next run
    # completes the import; nothing is reported as not migrated.
    prefix = dict(parse_qsl(urlsplit(prefix_url).query))["prefix"]
    now = time.time()
    records = [session(f"k{i}", created_at=now) for i in range(3)]
    for record in records:
        await _write_layout_1(client, prefix, record)
    layout = RedisStore(prefix_url).layout
    await client.hset(*_key_entry(layout, "k1"), layout.tag("u1"))
    store = RedisStore(prefixed(prefix_url, "x").replace("prefix=x", "migrate=1"))
    with caplog.at_level(logging.WARNING, logger="authstate"):
        await store.open()
    try:
        for record in records:
            assert await store.get_session(record.key) == record
        assert "not migrated" not in caplog.text
    finally:
        await store.close()


async def test_a_migration_interrupted_while_deleting_leaves_nothing_after_a_rerun(
    prefix_url: str, store: RedisStore, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = dict(parse_qsl(urlsplit(prefix_url).query))["prefix"]
    record = family("r1", created_at=time.time(), previous_key="r0", rotated_at=time.time())
    await _write_layout_1(client, prefix, record)
    delete, deleted = store._client.delete, []

    async def cut_after_one(*names: Any) -> Any:
        # The connection drops after the first of the record's layout-1 keys is deleted.
        if b":exp" not in names[0]:
            if deleted:
                raise redis.exceptions.ConnectionError("connection lost")
            deleted.append(names)
        return await delete(*names)

    monkeypatch.setattr(store._client, "delete", cut_after_one)
    with pytest.raises(StoreUnavailable):
        await _redis_migrate.migrate(store)
    monkeypatch.setattr(store._client, "delete", delete)
    assert await _redis_migrate.migrate(store) == 1
    assert await store.get_session("r1") == record
    # No layout-1 record (``P{u:<user>}:s:<handle>``) or pointer (``P:k:``, ``P:h:``) stays.
    old = (f"{prefix}k:".encode(), f"{prefix}h:".encode())
    left = [k async for k in client.scan_iter(f"{prefix}*") if k.startswith(old) or b":s:" in k]
    assert left == []


async def test_a_store_of_an_unknown_layout_is_refused(
    prefix_url: str, store: RedisStore, client: Any
) -> None:
    await client.set(store.layout.version, b"3")
    with pytest.raises(ConfigurationError, match="layout 3"):
        await RedisStore(prefix_url).open()


async def test_import_sessions_writes_what_create_session_would(store: RedisStore) -> None:
    now = time.time()
    records = [
        session(f"k{i}", user_id=f"user{i // 3}", created_at=now, idle_timeout=60)
        for i in range(30)
    ]
    await store.import_sessions(records)
    for record in records:
        assert await store.get_session(record.key) == record
    assert [r.key for r in await store.list_sessions("user2")] == ["k8", "k7", "k6"]
    # Indexed for purge like any other session, and a taken key is a conflict.
    assert await store.purge_expired(now + 61) == 30
    await store.import_sessions([session("k0", user_id="user0")])
    with pytest.raises(Conflict):
        await store.import_sessions([session("k0", handle="new", user_id="someone")])


async def test_a_login_while_the_purge_empties_the_user_is_purged_later(
    store: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The purge deletes the user's dead records, then re-indexes the user at its next death
    # (or not at all when none is left). A login between the two steps must stay indexed, or
    # its record would never be purged.
    now = time.time()
    await store.create_session(session("old", created_at=now, expires_at=now + 10))
    late = session("late", created_at=now, expires_at=now + 200)
    run = store._run

    async def login_before_the_reindex(name: str, keys: Any, args: Any = ()) -> Any:
        if name == "MOVE_DUE" and await store.get_session("late") is None:
            await store.create_session(late)
        return await run(name, keys, args)

    monkeypatch.setattr(store, "_run", login_before_the_reindex)
    assert await store.purge_expired(now + 100) == 1
    monkeypatch.setattr(store, "_run", run)
    assert await store.list_sessions("u1") == [late]
    assert await store.purge_expired(now + 300) == 1
    assert await store.list_sessions("u1") == []
