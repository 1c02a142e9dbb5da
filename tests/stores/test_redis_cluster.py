"""The Redis store passes the store contract on a real 3-master Redis Cluster.

The cluster is started by ``tests/stores/redis_cluster.py`` for the session; each test has
its own key prefix, so tests share the cluster without seeing each other's keys.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from redis.asyncio.cluster import RedisCluster

from authstate.errors import Conflict, StoreUnavailable
from authstate.stores._redis_layout import key_bytes
from authstate.stores.base import Change, ChangeKind, Store
from authstate.stores.redis import RedisStore
from tests.stores.contract import T0, DataLossContract, StoreContract, eventually, family, session
from tests.stores.redis_cluster import redis_cluster_url  # noqa: F401 - registers the fixture

pytestmark = pytest.mark.anyio


@pytest.fixture
def cluster_store_url(request: pytest.FixtureRequest) -> str:
    base: str = request.getfixturevalue("redis_cluster_url")
    return f"{base}?prefix=t{secrets.token_hex(6)}:"


@pytest.fixture
async def store(cluster_store_url: str) -> AsyncIterator[RedisStore]:
    """An open store on the cluster under the test's own prefix (the contract's too)."""
    store = RedisStore(cluster_store_url)
    await store.open()
    yield store
    await store.close()


class TestRedisClusterStore(StoreContract, DataLossContract):
    @pytest.fixture
    def store(self, store: RedisStore) -> RedisStore:
        """The module's ``store`` (the contract's base class only declares one)."""
        return store

    async def second_store(self, store: Store) -> Store:
        assert isinstance(store, RedisStore)
        other = RedisStore(store.url)
        await other.open()
        return other

    # Data loss under this test's own random prefix only, key by key across the masters.
    async def snapshot(self, store: Store) -> Any:
        async with _cluster(store) as (client, prefix):
            return {key: await client.dump(key) async for key in client.scan_iter(f"{prefix}*")}

    async def restore(self, store: Store, copy: Any) -> None:
        await self.empty(store)
        async with _cluster(store) as (client, _):
            for key, value in copy.items():
                await client.restore(key, 0, value, replace=True)

    async def empty(self, store: Store) -> None:
        async with _cluster(store) as (client, prefix):
            async for key in client.scan_iter(f"{prefix}*"):
                await client.delete(key)


@contextlib.asynccontextmanager
async def _cluster(store: Store) -> AsyncIterator[tuple[RedisCluster, str]]:
    assert isinstance(store, RedisStore)
    prefix = dict(parse_qsl(urlsplit(store.url).query))["prefix"]
    client = RedisCluster.from_url(store.url.split("?")[0].replace("+cluster", ""))
    try:
        await client.initialize()
        yield client, prefix
    finally:
        await client.aclose()


async def test_each_user_stays_in_one_slot_and_users_spread_over_the_masters(
    store: RedisStore,
) -> None:
    async with _cluster(store) as (client, _):
        users = [f"user{i}" for i in range(30)]
        for user in users:
            await store.create_session(session(f"s-{user}", user_id=user))
            await store.create_session(family(f"r-{user}", user_id=user))
        layout = store.layout
        slots_per_user = {
            user: {
                client.keyslot(layout.records(user)),
                client.keyslot(layout.grants(user)),
                client.keyslot(layout.generation(user)),
            }
            for user in users
        }
        assert all(len(slots) == 1 for slots in slots_per_user.values())
        nodes = {client.get_node_from_key(layout.records(user)).name for user in users}
        assert len(nodes) == 3  # 30 users, 3 masters: every master holds some
        # So do the key and handle buckets.
        buckets = [layout.key_bucket(key_bytes(f"s-{user}")) for user in users]
        assert len({client.get_node_from_key(bucket).name for bucket in buckets}) == 3
        # A hostile id still yields one slot (its tag is a digest, not the raw text).
        hostile = "a}b{c"
        hostile_keys = [layout.records(hostile), layout.grants(hostile)]
        assert len({client.keyslot(key) for key in hostile_keys}) == 1


async def test_pub_sub_on_the_cluster_reaches_another_node(cluster_store_url: str) -> None:
    writer, reader = RedisStore(cluster_store_url), RedisStore(cluster_store_url)
    await writer.open()
    await reader.open()
    try:
        received: list[Change] = []
        await reader.listen(received.append)
        assert reader.bus_healthy_since() is not None
        change = await writer.publish(Change(ChangeKind.USER, "u1", until=T0, generation=3))
        await eventually(lambda: change in received, 1.0)
    finally:
        await writer.close()
        await reader.close()


async def test_import_sessions_writes_on_every_master(store: RedisStore) -> None:
    records = [session(f"k{i}", user_id=f"user{i // 3}") for i in range(60)]
    await store.import_sessions(records)
    for record in records:
        assert await store.get_session(record.key) == record
    assert [r.key for r in await store.list_sessions("user2")] == ["k8", "k7", "k6"]
    with pytest.raises(Conflict):
        await store.import_sessions([session("k0", handle="new", user_id="someone")])


async def test_import_sessions_without_a_known_node_is_store_unavailable(
    store: RedisStore,
) -> None:
    # As while a failover leaves slots uncovered: the client knows no node for the keys.
    store._client.nodes_manager.slots_cache.clear()
    with pytest.raises(StoreUnavailable):
        await store.import_sessions([session("k0")])
