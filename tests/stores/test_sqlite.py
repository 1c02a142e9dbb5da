"""The SQLite store passes the store contract, with a second connection on the same file."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from authstate.errors import ConfigurationError, StoreUnavailable
from authstate.rotation import rotate_refresh
from authstate.stores.base import Change, ChangeKind, LogRead, SessionRecord, Store, UserRecord
from authstate.stores.sqlite import SCHEMA_VERSION, SQLiteStore
from tests.stores.contract import T0, DataLossContract, StoreContract, eventually, family, session

POLL = 0.05


class TestSQLiteStore(StoreContract, DataLossContract):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[Store]:
        store = SQLiteStore(f"sqlite:///{tmp_path}/auth.db", poll_interval=POLL)
        await store.open()
        yield store
        await store.close()

    async def second_store(self, store: Store) -> Store:
        assert isinstance(store, SQLiteStore)
        other = SQLiteStore(store.url, poll_interval=POLL)
        await other.open()
        return other

    # Data loss as an operator causes it: an older copy of the file put back (through the
    # backup API, so the running processes see a consistent file), or the log emptied.
    async def snapshot(self, store: Store) -> Any:
        assert isinstance(store, SQLiteStore)
        copy = sqlite3.connect(":memory:")
        with contextlib.closing(sqlite3.connect(store.path)) as live:
            live.backup(copy)
        return copy

    async def restore(self, store: Store, copy: Any) -> None:
        assert isinstance(store, SQLiteStore)
        with contextlib.closing(sqlite3.connect(store.path)) as live:
            copy.backup(live)
        copy.close()

    async def empty(self, store: Store) -> None:
        assert isinstance(store, SQLiteStore)
        with contextlib.closing(sqlite3.connect(store.path, isolation_level=None)) as live:
            live.execute("DELETE FROM changes")
            live.execute("DELETE FROM sqlite_sequence WHERE name = 'changes'")
            live.execute("DROP TABLE log_epoch")


def url_for(path: Path) -> str:
    return f"sqlite:///{path}"  # tmp paths are absolute: sqlite:////tmp/...


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return url_for(tmp_path / "auth.db")


async def opened(url: str, **options: Any) -> SQLiteStore:
    store = SQLiteStore(url, **options)
    await store.open()
    return store


def in_threads(
    count: int,
    body: Callable[[int, SQLiteStore], Awaitable[None]],
    url: str,
    barrier: threading.Barrier | None = None,
) -> None:
    """Run ``body(n, store)`` in ``count`` threads at once, each with its own loop and
    connection: truly concurrent transactions, as between server processes. ``barrier``
    is broken when one thread fails, so the others stop waiting for it."""
    errors: list[BaseException] = []

    def thread(n: int) -> None:
        async def main() -> None:
            store = await opened(url)
            try:
                await body(n, store)
            finally:
                await store.close()

        try:
            asyncio.run(main())
        except BaseException as exc:
            errors.append(exc)
            if barrier is not None:
                barrier.abort()

    threads = [threading.Thread(target=thread, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    if errors:
        raise errors[0]


# -- several connections on one file ---------------------------------------------------------
@pytest.mark.anyio
async def test_two_instances_see_each_others_writes(db_url: str) -> None:
    first, second = await opened(db_url), await opened(db_url)
    try:
        await first.create_session(session("k"))
        await second.create_user(UserRecord("1", "alice", "h"))
        assert await second.get_session("k") == session("k")
        assert await first.get_user_by_name("alice") == UserRecord("1", "alice", "h")
        await second.delete_session("k")
        assert await first.get_session("k") is None
    finally:
        await first.close()
        await second.close()


@pytest.mark.anyio
async def test_a_change_reaches_another_instance_on_its_next_poll(db_url: str) -> None:
    """The bus is a poll every 0.2 s by default: a published change is delivered by the
    first poll that starts after it, never a later one. (Counted in polls, not seconds:
    the latency itself is the bench's revocation figure.)"""
    first, second = await opened(db_url), await opened(db_url)
    try:
        assert second._poll_interval == 0.2
        polls: list[int] = []
        read_log = second.read_log

        async def counted(after: int) -> LogRead:
            polls.append(after)
            return await read_log(after)

        second.read_log = counted  # type: ignore[method-assign]
        received: list[Change] = []
        await second.listen(received.append)
        change = await first.publish(Change(ChangeKind.SID, "s", until=T0))
        polls_before = len(polls)
        await eventually(lambda: change in received, 30.0)  # a hang guard, not a bound
        # The poll running when it was published may have missed it; the next one may not.
        assert len(polls) - polls_before <= 2, polls
    finally:
        await first.close()
        await second.close()


@pytest.mark.anyio
async def test_a_local_change_is_delivered_once_at_publish(db_url: str) -> None:
    store = await opened(db_url, poll_interval=POLL)
    try:
        received: list[Change] = []
        await store.listen(received.append)
        change = await store.publish(Change(ChangeKind.JTI, "j", until=T0))
        assert received == [change]  # before publish returned, not a poll later
        await asyncio.sleep(POLL * 4)
        assert received == [change]
    finally:
        await store.close()


@pytest.mark.anyio
async def test_bus_health_follows_the_polls(db_url: str) -> None:
    store = await opened(db_url, poll_interval=POLL)
    try:
        assert store.bus_healthy_since() is None  # nobody listens: nothing is delivered
        await store.listen(lambda change: None)
        first = store.bus_healthy_since()
        assert first is not None
        await eventually(lambda: (store.bus_healthy_since() or 0) > first, 1.0)

        async def broken(seq: int) -> LogRead:
            raise StoreUnavailable(reason="disk gone")

        store.read_log = broken  # type: ignore[method-assign]
        await eventually(lambda: store.bus_healthy_since() is None, 1.0)
        del store.read_log
        await eventually(lambda: store.bus_healthy_since() is not None, 1.0)
    finally:
        await store.close()


@pytest.mark.anyio
async def test_data_survives_close_and_reopen(db_url: str) -> None:
    store = await opened(db_url)
    await store.create_session(session("k"))
    change = await store.publish(Change(ChangeKind.SID, "s", until=T0))
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.get_session("k")
    await store.open()
    try:
        assert await store.get_session("k") == session("k")
        assert await store.changes_since(0) == [change]
    finally:
        await store.close()


@pytest.mark.anyio
async def test_calls_run_on_the_event_loop_thread(db_url: str) -> None:
    store = await opened(db_url)
    try:
        threads: set[int] = set()
        assert store._db is not None
        store._db.set_trace_callback(lambda sql: threads.add(threading.get_ident()))
        await store.create_session(session("k"))
        await store.get_session("k")
        assert threads == {threading.get_ident()}
    finally:
        await store.close()


# -- durability ---------------------------------------------------------------------------------
KILLED_WRITER = """
import asyncio, sys
from authstate.stores.base import SessionRecord
from authstate.stores.sqlite import SQLiteStore

async def main() -> None:
    store = SQLiteStore(sys.argv[1])
    await store.open()
    record = SessionRecord("killed", "h", "u", "session", 1.0, 1.0, 2e9, 0.0)
    await store.create_session(record)
    print("committed", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


def test_a_session_survives_sigkill_right_after_the_write(db_url: str) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, db_url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "committed"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL

    async def read() -> SessionRecord | None:
        store = await opened(db_url)
        try:
            return await store.get_session("killed")
        finally:
            await store.close()

    record = asyncio.run(read())
    assert record is not None and record.handle == "h"


@pytest.mark.anyio
async def test_the_file_is_in_wal_mode(db_url: str, tmp_path: Path) -> None:
    store = await opened(db_url)
    await store.close()
    with contextlib.closing(sqlite3.connect(tmp_path / "auth.db")) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# -- opening ------------------------------------------------------------------------------------
def test_concurrent_first_opens_all_succeed(db_url: str, tmp_path: Path) -> None:
    barrier = threading.Barrier(6)

    async def body(n: int, store: SQLiteStore) -> None:
        await store.create_user(UserRecord(str(n), f"user{n}", "h"))

    # Every thread opens the brand-new file at the same moment.
    original = SQLiteStore._connect

    def connect_together(self: SQLiteStore) -> sqlite3.Connection:
        barrier.wait(timeout=10)
        return original(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SQLiteStore, "_connect", connect_together)
        in_threads(6, body, db_url, barrier)
    with contextlib.closing(sqlite3.connect(tmp_path / "auth.db")) as db:
        assert db.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 6
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


@pytest.mark.anyio
async def test_opening_an_existing_store_again_is_idempotent(db_url: str) -> None:
    for _ in range(3):
        store = await opened(db_url)
        await store.create_session(session(f"k{_}"))
        await store.close()
    store = await opened(db_url)
    try:
        assert len(await store.list_sessions("u1")) == 3
    finally:
        await store.close()


@pytest.mark.anyio
async def test_a_missing_directory_is_a_configuration_error(tmp_path: Path) -> None:
    store = SQLiteStore(url_for(tmp_path / "absent" / "auth.db"))
    with pytest.raises(ConfigurationError, match="does not exist"):
        await store.open()


@pytest.mark.anyio
async def test_a_file_that_is_not_a_database_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "auth.db").write_bytes(b"this is not a database, just some text" * 100)
    with pytest.raises(ConfigurationError, match="cannot open the SQLite store"):
        await opened(url_for(tmp_path / "auth.db"))


@pytest.mark.anyio
async def test_a_newer_schema_is_refused(db_url: str, tmp_path: Path) -> None:
    await (await opened(db_url)).close()
    with contextlib.closing(sqlite3.connect(tmp_path / "auth.db")) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(ConfigurationError, match="schema version"):
        await opened(db_url)


@pytest.mark.anyio
async def test_an_in_memory_database_works_for_one_store() -> None:
    store = await opened("sqlite://:memory:")
    try:
        await store.create_session(session("k"))
        assert await store.get_session("k") is not None
    finally:
        await store.close()


# -- locking ----------------------------------------------------------------------------------
@pytest.mark.anyio
async def test_a_held_write_lock_waits_without_blocking_the_loop(
    db_url: str, tmp_path: Path
) -> None:
    store = await opened(db_url)
    holder = sqlite3.connect(tmp_path / "auth.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticking = asyncio.create_task(ticker())
        write = asyncio.create_task(store.create_session(session("k")))
        await asyncio.sleep(0.3)
        assert not write.done()
        assert ticks >= 10  # the loop kept serving while the lock was held
        holder.execute("COMMIT")
        await asyncio.wait_for(write, 2)
        ticking.cancel()
        assert await store.get_session("k") is not None
    finally:
        holder.close()
        await store.close()


@pytest.mark.anyio
async def test_a_lock_held_too_long_is_store_unavailable(db_url: str, tmp_path: Path) -> None:
    store = await opened(db_url, lock_timeout=0.2)
    holder = sqlite3.connect(tmp_path / "auth.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreUnavailable):
            await store.bump_user_generation("u1")
        holder.execute("ROLLBACK")
        assert await store.bump_user_generation("u1") == 1
    finally:
        holder.close()
        await store.close()


# -- races between connections in different threads (real concurrency) -------------------------
ROUNDS = 25


def test_rotation_race_between_connections_yields_rotated_and_grace(db_url: str) -> None:
    async def setup() -> None:
        store = await opened(db_url)
        for i in range(ROUNDS):
            await store.create_session(family(f"r{i}"))
        await store.close()

    asyncio.run(setup())
    barrier = threading.Barrier(2)
    outcomes: dict[int, list[str]] = {i: [] for i in range(ROUNDS)}

    async def body(n: int, store: SQLiteStore) -> None:
        for i in range(ROUNDS):
            barrier.wait(timeout=10)
            result = await rotate_refresh(store, f"r{i}", f"s{i}", now=T0, grace_seconds=10)
            assert result.record is not None and result.record.key == f"s{i}"
            outcomes[i].append(result.outcome.value)

    in_threads(2, body, db_url, barrier)
    assert all(sorted(o) == ["grace", "rotated"] for o in outcomes.values()), outcomes


def test_logout_racing_rotation_between_connections_never_resurrects(db_url: str) -> None:
    async def setup() -> None:
        store = await opened(db_url)
        for i in range(ROUNDS):
            await store.create_session(family(f"r{i}"))
        await store.close()

    asyncio.run(setup())
    barrier = threading.Barrier(2)

    async def body(n: int, store: SQLiteStore) -> None:
        for i in range(ROUNDS):
            barrier.wait(timeout=10)
            if n == 0:
                await store.delete_session_by_handle(f"h-r{i}", user_id="u1")
            else:
                await rotate_refresh(store, f"r{i}", f"s{i}", now=T0, grace_seconds=10)

    in_threads(2, body, db_url, barrier)

    async def check() -> None:
        store = await opened(db_url)
        try:
            assert await store.list_sessions("u1") == []
        finally:
            await store.close()

    asyncio.run(check())


def test_bumps_and_failures_from_many_connections_are_all_counted(db_url: str) -> None:
    results: list[int] = []
    generations: list[int] = []

    async def body(n: int, store: SQLiteStore) -> None:
        for _ in range(10):
            results.append(await store.record_failure("ip:x", now=T0, window=60))
            generations.append(await store.bump_user_generation("u1"))

    in_threads(4, body, db_url)
    assert sorted(results) == list(range(1, 41))
    assert sorted(generations) == list(range(1, 41))


@pytest.mark.anyio
async def test_the_store_reads_its_file_through_a_memory_map(db_url: str) -> None:
    """Cold lookups stay flat as the store grows (docs/performance.md, scale): pages come
    from the operating system's cache, not through SQLite's 2 MB page cache."""
    store = SQLiteStore(db_url)
    await store.open()
    try:
        assert store._db is not None
        mapped = store._db.execute("PRAGMA mmap_size").fetchone()[0]
        assert mapped >= 256 * 2**20 or mapped == sqlite3_max_mmap()
        await store.create_session(session("k"))  # and the store works through it
        assert await store.get_session("k") is not None
    finally:
        await store.close()


def sqlite3_max_mmap() -> int:
    """What this SQLite build allows at most (SQLITE_MAX_MMAP_SIZE caps the pragma)."""
    probe = sqlite3.connect(":memory:")
    try:
        options = [row[0] for row in probe.execute("PRAGMA compile_options")]
    finally:
        probe.close()
    for option in options:
        if option.startswith("MAX_MMAP_SIZE="):
            return int(option.split("=", 1)[1], 0)
    return 0x7FFF0000  # SQLite's default maximum


@pytest.mark.anyio
async def test_a_version_2_database_is_upgraded_and_keeps_its_sessions(tmp_path: Path) -> None:
    # A database written before step-up and remember-me: no auth_time/remember columns.
    path = tmp_path / "auth.db"
    store = SQLiteStore(url_for(path))
    await store.open()
    await store.create_session(session("old", created_at=T0))
    await store.close()
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE sessions DROP COLUMN auth_time")
    db.execute("ALTER TABLE sessions DROP COLUMN remember")
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    store = SQLiteStore(url_for(path))
    await store.open()
    try:
        old = await store.get_session("old")
        assert old is not None and (old.auth_time, old.remember) == (0.0, True)
        await store.create_session(session("new", auth_time=T0 + 1, remember=False))
        new = await store.get_session("new")
        assert new is not None and (new.auth_time, new.remember) == (T0 + 1, False)
    finally:
        await store.close()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
