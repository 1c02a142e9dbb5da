"""The held reading connection of ``PostgresStore``: the cold session lookup without the pool.

A cold session lookup is one statement, yet through asyncpg's pool it cost four times the
statement's own round trip: the pool's acquire and release (futures, a proxy object, an
inactivity timer, a queue) run in Python on every call, and the statement went through the
connection's statement cache. So the store keeps one connection of its own, outside the
pool, with the lookup prepared on it, and a lookup runs that prepared statement directly.

One lookup at a time uses it (a connection runs one statement at a time); a lookup that
finds it busy, not yet connected or broken goes through the pool exactly as before, so
concurrency and the pool's retry rules are unchanged. A connection that fails is dropped
at once and replaced in the background; until then lookups use the pool. Nothing here
writes: ``touch_session`` (the sliding idle expiry) keeps its own statement on the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

import asyncpg

from authstate.errors import StoreUnavailable

log = logging.getLogger("authstate")

# What ``fetchrow`` answers when the held connection cannot serve: use the pool instead.
UNUSABLE: Final = object()
_RECONNECT_PAUSE = 1.0  # seconds between attempts while the server refuses

# What the driver raises for a failed statement or connection: the store turns it into
# StoreUnavailable (``postgres._translated``). Here it says "this connection is no good",
# after which the pool decides: it retries a dead connection or raises StoreUnavailable for a
# real error, as for any other read.
DRIVER_FAILURES = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    # A pooled connection the server has just killed can report a protocol state error
    # before it reports itself closed; the pool drops it either way.
    asyncpg.InternalClientError,
    OSError,
)


class HeldReader:
    """One connection and one prepared statement for a hot single-row read."""

    def __init__(self, connect: Callable[[], Awaitable[Any]], sql: str) -> None:
        self._connect = connect
        self._sql = sql
        self._conn: Any = None
        self._statement: Any = None
        self._busy = False
        self._active = False  # between open() and close(): only then does it (re)connect
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Connect now; a failure only leaves the lookups on the pool until a retry works."""
        self._active = True
        with contextlib.suppress(*DRIVER_FAILURES):
            await self._establish()

    async def fetchrow(self, arg: Any) -> Any:
        """The row for ``arg`` (None when there is none), or ``UNUSABLE``."""
        statement = self._statement
        if statement is None or self._busy:
            if statement is None:
                self._reconnect_soon()
            return UNUSABLE
        self._busy = True
        try:
            return await statement.fetchrow(arg)
        except TimeoutError as exc:
            # The command timeout: the pool would wait as long again. The statement may still
            # run on the server, so this connection is done too.
            self._drop()
            raise StoreUnavailable(reason=f"PostgreSQL: {exc!r}") from exc
        except DRIVER_FAILURES as exc:
            log.debug("held PostgreSQL reader dropped: %r", exc)
            self._drop()
            return UNUSABLE
        except BaseException:
            # A cancelled request: the statement may still be running on the server, so the
            # connection cannot be trusted with the next one.
            self._drop()
            raise
        finally:
            self._busy = False

    async def close(self) -> None:
        self._active = False
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        conn = self._conn
        self._conn = self._statement = None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=1.0)

    # -- connection ---------------------------------------------------------------------------
    async def _establish(self) -> None:
        conn = await self._connect()
        try:
            # In a transaction of its own: asyncpg prepares without a Sync, which leaves an
            # implicit transaction open, holding a lock on the table until the first lookup
            # (a node that only hits its cache would stall a migration, and every node's
            # lookups queued behind it, for as long as it runs).
            async with conn.transaction():
                statement = await conn.prepare(self._sql)
        except BaseException:
            conn.terminate()
            raise
        if not self._active or self._conn is not None:
            conn.terminate()  # closed meanwhile, or another attempt won
            return
        self._conn, self._statement = conn, statement

    def _drop(self) -> None:
        """Forget the connection and start replacing it."""
        conn = self._conn
        self._conn = self._statement = None
        if conn is not None:
            conn.terminate()
        self._reconnect_soon()

    def _reconnect_soon(self) -> None:
        if not self._active or (self._task is not None and not self._task.done()):
            return
        self._task = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        try:
            await self._establish()
        except DRIVER_FAILURES as exc:
            log.debug("held PostgreSQL reader: reconnect failed: %r", exc)
            # The task stays "running" through the pause, so lookups meanwhile do not retry.
            await asyncio.sleep(_RECONNECT_PAUSE)
