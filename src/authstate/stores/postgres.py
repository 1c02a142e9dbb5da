"""The PostgreSQL store: asyncpg with a connection pool, the bus on LISTEN/NOTIFY.

The URL is handed to asyncpg as it is; query options it does not know become server
settings, so ``postgresql://host/db?search_path=tenant`` keeps the store in schema
``tenant``. ``open()`` creates or migrates the schema (see ``_pg_schema``).

Races are settled by PostgreSQL, not by us: uniqueness by primary keys and unique indexes,
the refresh compare-and-swap by a conditional ``UPDATE`` (``_pg_sessions``), and the change
log by the counter row (``_pg_schema``). One part per concern: sessions and refresh
families (``_pg_sessions``), keys, users, throttling and generations (``_pg_accounts``), the
bus (``_pg_bus``); this module has the pool, the lifecycle and the change log. Every
driver or network error leaves this module as ``StoreUnavailable``, a unique violation as
``Conflict``: both at ``_connection``.

A statement that finds its pooled connection already dead (the server restarted or cut it
a moment ago) is tried once more on a fresh one when that is safe: always for reads, and
for writes when the driver failed before sending anything. Only then does the caller see
``StoreUnavailable``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import asyncpg

from authstate._time import Clock, SystemClock
from authstate.errors import Conflict, StoreUnavailable
from authstate.stores import _pg_rows as rows
from authstate.stores._bus import new_epoch
from authstate.stores._pg_accounts import PgAccounts
from authstate.stores._pg_bus import CHANNEL, NotifyBus
from authstate.stores._pg_grants import PgGrants
from authstate.stores._pg_reader import DRIVER_FAILURES, HeldReader
from authstate.stores._pg_rows import affected, to_db
from authstate.stores._pg_schema import PURGE_SESSIONS, migrate
from authstate.stores._pg_sessions import GET_SESSION, PgSessions
from authstate.stores.base import (
    LATEST,
    Change,
    ChangeKind,
    ChangeListener,
    LogRead,
    Reconciler,
)

_CONNECT_TIMEOUT = 5.0
_COMMAND_TIMEOUT = 10.0
_HEAD = "SELECT value FROM authstate_counters WHERE name = 'changes'"
# The epoch lives beside the counter (a row, not a migration: a schema that lost it, or
# predates it, gets one on the next read; see stores.base).
_EPOCH_HEAD = (
    "SELECT (SELECT value FROM authstate_counters WHERE name = 'epoch'),"
    " (SELECT value FROM authstate_counters WHERE name = 'changes')"
)
_MAKE_EPOCH = (
    "INSERT INTO authstate_counters (name, value) VALUES ('epoch', $1) ON CONFLICT DO NOTHING"
)
_CHANGES_SINCE = "SELECT * FROM authstate_changes WHERE seq > $1 ORDER BY seq"


class _PooledConnection(asyncpg.Connection):  # type: ignore[misc]
    """A pool connection released without asyncpg's reset statement.

    By default every release sends ``SELECT pg_advisory_unlock_all(); CLOSE ALL;
    UNLISTEN *; RESET ALL``: a round trip per store call that doubled the cost of a
    session read. Our pooled statements leave nothing behind for it to undo (advisory
    locks are transaction-scoped, LISTEN has its own connection, nothing SETs or opens
    cursors), and asyncpg still rolls back a transaction left open, whatever this says.
    """

    def get_reset_query(self) -> str:
        return ""


_REVOCATION_KINDS = [
    ChangeKind.JTI.value,
    ChangeKind.SID.value,
    ChangeKind.USER.value,
    ChangeKind.ROLES.value,
]


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    # The one place driver exceptions become authstate errors.
    try:
        yield
    except (asyncpg.UniqueViolationError, asyncpg.ExclusionViolationError) as exc:
        raise Conflict("a record with this identity exists", reason=str(exc)) from exc
    except DRIVER_FAILURES as exc:
        raise StoreUnavailable(reason=f"PostgreSQL: {exc!r}") from exc


def _retryable(exc: StoreUnavailable, *, read_only: bool) -> bool:
    """Whether ``exc`` came from a pooled connection that was already dead, and trying the
    statement again on another connection cannot apply it twice."""
    cause = exc.__cause__
    if isinstance(cause, asyncpg.InternalClientError):
        return True  # refused by the driver's state machine: nothing reached the server
    return read_only and isinstance(cause, asyncpg.ConnectionDoesNotExistError | ConnectionError)


class PostgresStore(PgSessions, PgAccounts, PgGrants):
    """A ``Store`` in PostgreSQL, shared by every node that uses the same database and schema."""

    url_scheme = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        clock: Clock | None = None,
        pool_size: int = 10,
        heartbeat: float = 1.0,
    ) -> None:
        self.url = url
        self._clock: Clock = clock or SystemClock()
        self._pool_size = pool_size
        self._pool: Any = None
        query = dict(parse_qsl(urlsplit(url).query))
        # The listening connection names itself after the pool, so operators (and tests) can
        # tell it apart in pg_stat_activity.
        self._bus_name = f"{query.get('application_name', 'authstate')} bus"
        self._bus = NotifyBus(
            self._connect_listener, self.read_log, self._clock, keepalive=heartbeat
        )
        self._reader = HeldReader(self._connect_reader, GET_SESSION)

    # -- plumbing -----------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        pool = self._pool
        if pool is None:
            raise StoreUnavailable(reason="the PostgreSQL store is closed")
        with _translated():
            async with pool.acquire(timeout=_CONNECT_TIMEOUT) as conn:
                yield conn

    async def _query(self, method: str, sql: str, *args: Any, read_only: bool = True) -> Any:
        """One statement (``method`` of an asyncpg connection), retried once when safe."""
        try:
            async with self._connection() as conn:
                return await getattr(conn, method)(sql, *args)
        except StoreUnavailable as exc:
            if not _retryable(exc, read_only=read_only) or self._pool is None:
                raise
            # One dead connection usually means all of them (a restart, a cut): replace the
            # whole pool's connections rather than meet each corpse once.
            await self._pool.expire_connections()
        async with self._connection() as conn:
            return await getattr(conn, method)(sql, *args)

    async def _write(self, method: str, sql: str, *args: Any) -> Any:
        return await self._query(method, sql, *args, read_only=False)

    @contextlib.asynccontextmanager
    async def _transaction(self, isolation: str = "read_committed") -> AsyncIterator[Any]:
        async with self._connection() as conn, conn.transaction(isolation=isolation):
            yield conn

    async def _connect_reader(self) -> Any:
        return await asyncpg.connect(
            self.url, timeout=_CONNECT_TIMEOUT, command_timeout=_COMMAND_TIMEOUT
        )

    async def _connect_listener(self) -> Any:
        return await asyncpg.connect(
            self.url,
            timeout=_CONNECT_TIMEOUT,
            server_settings={"application_name": self._bus_name},
        )

    # -- lifecycle ----------------------------------------------------------------------------
    async def open(self) -> None:
        if self._pool is not None:
            return
        with _translated():
            pool = await asyncpg.create_pool(
                self.url,
                min_size=1,
                max_size=self._pool_size,
                timeout=_CONNECT_TIMEOUT,
                command_timeout=_COMMAND_TIMEOUT,
                connection_class=_PooledConnection,
            )
        try:
            with _translated():
                # A connection of its own, without the pool's command timeout: a migration
                # may copy a large table (schema 4 rebuilds the sessions table), and one cut
                # short rolls back and would fail every start the same way.
                conn = await asyncpg.connect(self.url, timeout=_CONNECT_TIMEOUT)
                try:
                    await migrate(conn)
                finally:
                    await conn.close()
        except BaseException:
            await pool.close()
            raise
        self._pool = pool
        await self._reader.open()

    async def close(self) -> None:
        await self._bus.stop()
        await self._reader.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            with contextlib.suppress(Exception):
                await pool.close()

    async def ping(self) -> None:
        await self._query("fetchval", "SELECT 1")

    async def purge_expired(self, now: float) -> int:
        statements = (
            PURGE_SESSIONS,
            "DELETE FROM authstate_consumed WHERE expires_at <= $1",
            "DELETE FROM authstate_changes WHERE until < $1",
            "DELETE FROM authstate_failures WHERE forget_at <= $1",
        )
        # Each delete is idempotent, so they retry like reads.
        return sum([affected(await self._query("execute", sql, now)) for sql in statements])

    # -- revocation state and the change log (the bus) -----------------------------------------
    async def publish(self, change: Change) -> Change:
        # One statement, so one transaction: the counter row lock orders the commits and the
        # notification is sent at commit, never for a change that rolled back.
        seq = await self._write(
            "fetchval",
            "WITH counter AS ("
            "  UPDATE authstate_counters SET value = value + 1 WHERE name = 'changes'"
            "  RETURNING value),"
            " logged AS ("
            "  INSERT INTO authstate_changes (seq, kind, value, until, generation)"
            "  SELECT value, $1, $2, $3, $4 FROM counter RETURNING seq)"
            " SELECT seq, pg_notify($5, seq::text) FROM logged",
            change.kind.value,
            to_db(change.value),
            change.until,
            change.generation,
            CHANNEL,
        )
        stored = Change(change.kind, change.value, change.until, change.generation, int(seq))
        if self._bus.running:
            # Read-your-writes on this node: its own listeners have the change on return.
            with contextlib.suppress(StoreUnavailable):
                await self._bus.catch_up()
        return stored

    async def changes_since(self, seq: int) -> list[Change]:
        sql = "SELECT * FROM authstate_changes WHERE seq > $1 ORDER BY seq"
        return [rows.change(row) for row in await self._query("fetch", sql, seq)]

    async def read_log(self, seq: int) -> LogRead:
        for _ in range(2):
            # One snapshot: the head must cover exactly the changes returned.
            async with self._transaction("repeatable_read") as conn:
                epoch, head = await conn.fetchrow(_EPOCH_HEAD)
                found = [] if seq >= LATEST else await conn.fetch(_CHANGES_SINCE, seq)
            if epoch is not None:
                return LogRead(str(epoch), int(head or 0), [rows.change(row) for row in found])
            # A schema without an epoch: new, or its counters were lost. Make one (the first
            # node to get here wins; the others read the same).
            await self._write("execute", _MAKE_EPOCH, int(new_epoch(), 16) >> 2)
        raise StoreUnavailable(reason="PostgreSQL: the change log's epoch keeps vanishing")

    async def active_revocations(self, now: float) -> tuple[list[Change], int]:
        # One snapshot for both reads: the seq must cover exactly the changes returned.
        async with self._transaction("repeatable_read") as conn:
            found = await conn.fetch(
                "SELECT * FROM authstate_changes WHERE kind = ANY($1::text[]) AND until >= $2"
                " ORDER BY seq",
                _REVOCATION_KINDS,
                now,
            )
            head = await conn.fetchval(_HEAD)
        return [rows.change(row) for row in found], int(head)

    async def listen(
        self, listener: ChangeListener, *, reconcile: Reconciler | None = None
    ) -> None:
        head = LogRead("", 0, []) if self._bus.running else await self.read_log(LATEST)
        self._bus.start(listener, head, reconcile)
        # Return once the node really listens, so a change published after this call cannot
        # slip by. A store that is down now is not an error here: the bus keeps retrying and
        # bus_healthy_since() tells the callers.
        await self._bus.wait_healthy(_CONNECT_TIMEOUT)

    def bus_healthy_since(self) -> float | None:
        return self._bus.healthy_since()

    def bus_lag(self) -> float | None:
        return self._bus.lag()

    def describe_bus(self) -> str:
        return f"LISTEN/NOTIFY, catch-up every {self._bus.keepalive:g} s"
