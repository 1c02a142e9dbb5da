"""The PostgreSQL store passes the store contract, migrates safely and keeps its bus alive.

Every test gets a schema of its own (``?search_path=`` in the URL), dropped afterwards, so
runs never see each other's rows, even when two run at once against one database.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from authstate.errors import ConfigurationError, StoreUnavailable
from authstate.stores._pg_rows import from_db, handle_to_db, key_to_db, to_db
from authstate.stores._pg_schema import MIGRATIONS
from authstate.stores.base import Change, ChangeKind, Store
from authstate.stores.postgres import PostgresStore
from tests.stores.contract import T0, DataLossContract, StoreContract, eventually, session


@pytest.fixture
async def schema_url(postgres_url: str) -> AsyncIterator[str]:
    """A store URL pointing at a fresh, empty schema (and naming its connections after it)."""
    name = f"authstate_test_{secrets.token_hex(6)}"
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(f"CREATE SCHEMA {name}")
        separator = "&" if "?" in postgres_url else "?"
        yield f"{postgres_url}{separator}search_path={name}&application_name={name}"
    finally:
        await conn.execute(f"DROP SCHEMA {name} CASCADE")
        await conn.close()


class TestPostgresStore(StoreContract, DataLossContract):
    @pytest.fixture
    async def store(self, schema_url: str) -> AsyncIterator[Store]:
        store = PostgresStore(schema_url)
        await store.open()
        yield store
        await store.close()

    async def second_store(self, store: Store) -> Store:
        assert isinstance(store, PostgresStore)
        other = PostgresStore(store.url)
        await other.open()
        return other

    # Data loss in this test's own schema: the log rewound to an older head (a restored
    # backup, a replica that was behind), or emptied with its epoch (a schema made anew).
    async def snapshot(self, store: Store) -> Any:
        async with _connection(store) as conn:
            return await conn.fetchval(_HEAD)

    async def restore(self, store: Store, copy: Any) -> None:
        async with _connection(store) as conn:
            await conn.execute("DELETE FROM authstate_changes WHERE seq > $1", copy)
            await conn.execute(_SET_HEAD, copy)

    async def empty(self, store: Store) -> None:
        async with _connection(store) as conn:
            await conn.execute("DELETE FROM authstate_changes")
            await conn.execute("DELETE FROM authstate_counters WHERE name = 'epoch'")
            await conn.execute(_SET_HEAD, 0)


_HEAD = "SELECT value FROM authstate_counters WHERE name = 'changes'"
_SET_HEAD = "UPDATE authstate_counters SET value = $1 WHERE name = 'changes'"


@contextlib.asynccontextmanager
async def _connection(store: Store) -> AsyncIterator[Any]:
    assert isinstance(store, PostgresStore)
    conn = await asyncpg.connect(store.url)
    try:
        yield conn
    finally:
        await conn.close()


pytestmark = pytest.mark.anyio


async def test_three_nodes_starting_at_once_migrate_the_schema_once(schema_url: str) -> None:
    stores = [PostgresStore(schema_url) for _ in range(3)]
    try:
        await asyncio.gather(*(store.open() for store in stores))
        conn = await asyncpg.connect(schema_url)
        try:
            versions = await conn.fetch("SELECT version FROM authstate_schema")
        finally:
            await conn.close()
        assert sorted(row["version"] for row in versions) == list(range(1, len(MIGRATIONS) + 1))
        for store in stores:
            await store.ping()
    finally:
        for store in stores:
            await store.close()


async def test_a_schema_from_a_newer_authstate_refuses_to_start(schema_url: str) -> None:
    store = PostgresStore(schema_url)
    await store.open()
    await store.close()
    conn = await asyncpg.connect(schema_url)
    try:
        await conn.execute("INSERT INTO authstate_schema (version) VALUES (99)")
    finally:
        await conn.close()
    with pytest.raises(ConfigurationError, match="version 99"):
        await PostgresStore(schema_url).open()


async def test_notify_delivers_every_change_to_another_node_in_order(schema_url: str) -> None:
    writer, reader = PostgresStore(schema_url), PostgresStore(schema_url)
    await writer.open()
    await reader.open()
    try:
        received: list[int] = []
        await reader.listen(lambda change: received.append(change.seq))
        await eventually(lambda: reader.bus_healthy_since() is not None, 30.0)
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


async def test_a_killed_listener_reconnects_and_catches_up(
    schema_url: str, postgres_url: str
) -> None:
    writer, reader = PostgresStore(schema_url), PostgresStore(schema_url)
    await writer.open()
    await reader.open()
    admin = await asyncpg.connect(postgres_url)
    try:
        received: list[Change] = []
        await reader.listen(received.append)
        await eventually(lambda: reader.bus_healthy_since() is not None, 2.0)
        app = schema_url.split("application_name=")[1]
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = $1",
            f"{app} bus",
        )
        assert killed == 1
        killed_at = time.monotonic()
        # Published while the listener is down: NOTIFY is lost, the catch-up is not.
        missed = await writer.publish(Change(ChangeKind.JTI, "while-down", until=T0))
        await eventually(lambda: missed in received, 5.0)
        await eventually(lambda: (reader.bus_healthy_since() or 0) >= killed_at, 5.0)
        print(f"\nPostgreSQL bus healthy again {time.monotonic() - killed_at:.3f} s after the kill")
        later = await writer.publish(Change(ChangeKind.JTI, "after", until=T0))
        await eventually(lambda: later in received, 1.0)
        assert [c.seq for c in received] == [missed.seq, later.seq]
    finally:
        await admin.close()
        await writer.close()
        await reader.close()


async def test_after_a_cut_the_bus_reconciles_before_it_reports_health_again(
    schema_url: str, postgres_url: str
) -> None:
    # Chaos report S1b: health came back before the node had dropped its caches, and for half
    # a second sessions the store had lost were served from them.
    reader = PostgresStore(schema_url)
    await reader.open()
    admin = await asyncpg.connect(postgres_url)
    try:
        health_while_reconciling: list[float | None] = []

        async def reconcile() -> None:
            health_while_reconciling.append(reader.bus_healthy_since())

        await reader.listen(lambda change: None, reconcile=reconcile)
        await eventually(lambda: reader.bus_healthy_since() is not None, 2.0)
        app = schema_url.split("application_name=")[1]
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            f"{app} bus",
        )
        killed_at = time.monotonic()
        await eventually(lambda: (reader.bus_healthy_since() or 0) >= killed_at, 5.0)
        assert health_while_reconciling == [None]
    finally:
        await admin.close()
        await reader.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_an_unreachable_server_is_store_unavailable() -> None:
    store = PostgresStore(f"postgresql://postgres@127.0.0.1:{_closed_port()}/test")
    with pytest.raises(StoreUnavailable):
        await store.open()
    with pytest.raises(StoreUnavailable):
        await store.get_session("k")


async def test_reads_survive_the_server_cutting_the_pools_connections(
    schema_url: str, postgres_url: str
) -> None:
    store = PostgresStore(schema_url)
    await store.open()
    admin = await asyncpg.connect(postgres_url)
    try:
        await store.create_session(session("k"))
        app = schema_url.split("application_name=")[1]
        for _ in range(5):
            await asyncio.gather(*(store.ping() for _ in range(5)))  # several pooled connections
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = $1",
                app,
            )
            # The dead connections are detected, replaced and the read retried: no error.
            assert await store.get_session("k") is not None
    finally:
        await admin.close()
        await store.close()


@pytest.mark.parametrize(
    "text", ["", "plain-hex-0f", "\\", "\\0", "\x00", "a\x00b\\0", "\ud800", "\\ud800", "ü🔑"]
)
def test_column_text_round_trips_and_never_collides(text: str) -> None:
    stored = to_db(text)
    assert "\x00" not in stored
    stored.encode("utf-8")  # storable: no unpaired surrogate left
    assert from_db(stored) == text
    others = ["", "plain-hex-0f", "\\", "\\0", "\x00", "a\x00b\\0", "\ud800", "\\ud800", "ü🔑"]
    assert [to_db(o) for o in others].count(stored) == 1


async def test_a_transaction_left_open_on_a_pooled_connection_is_rolled_back(
    schema_url: str,
) -> None:
    """Connections go back to the pool without asyncpg's reset statement (a round trip per
    call); a transaction something left open must still never leak into the next call."""
    store, other = PostgresStore(schema_url), PostgresStore(schema_url)
    await store.open()
    await other.open()
    try:
        async with store._connection() as conn:
            await conn.execute("BEGIN")
            # never committed
            await conn.execute(_INSERT_PROBE, key_to_db("probe"), handle_to_db("probe-handle"))
        await store.create_session(session("k"))  # on the same, single pooled connection
        # Had the BEGIN survived, this write would sit uncommitted and stay invisible.
        assert await other.get_session("k") is not None
        assert await other.get_session("probe") is None
    finally:
        await store.close()
        await other.close()


_INSERT_PROBE = (
    "INSERT INTO authstate_sessions (key, handle, user_id, kind, created_at, last_seen_at,"
    " expires_at, idle_timeout, roles, user_agent, ip, remember)"
    " VALUES ($1, $2, 'u', 's', 0, 0, 1e12, 0, '[]', '', '', true)"
)


async def test_the_held_reading_connection_is_replaced_when_it_dies(
    schema_url: str, postgres_url: str
) -> None:
    """Cold lookups run on a connection outside the pool; when the server cuts it, the lookup
    in flight falls back to the pool (no error) and the connection comes back by itself."""
    store = PostgresStore(schema_url)
    await store.open()
    admin = await asyncpg.connect(postgres_url)
    try:
        await store.create_session(session("k"))
        reader = store._reader._conn
        assert reader is not None
        await admin.execute("SELECT pg_terminate_backend($1)", reader.get_server_pid())
        assert await store.get_session("k") is not None
        await eventually(lambda: store._reader._conn not in (None, reader), 10.0)
        # Concurrent lookups: one on the held connection, the others through the pool.
        found = await asyncio.gather(*(store.get_session("k") for _ in range(20)))
        assert all(record is not None and record.key == "k" for record in found)
        assert await store.get_session("missing") is None
    finally:
        await admin.close()
        await store.close()
    assert store._reader._conn is None
    with pytest.raises(StoreUnavailable):
        await store.get_session("k")
    assert store._reader._task is None or store._reader._task.done()
