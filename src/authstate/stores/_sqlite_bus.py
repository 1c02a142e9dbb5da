"""The change log, its poller (the bus) and user generations of the SQLite store (a part
of ``SQLiteStore``).

The bus is a poll of the ``changes`` table every ``poll_interval`` seconds. Sequence
numbers come from ``AUTOINCREMENT`` under the write lock, so they commit in order and a
poller never skips one; ``bus_healthy_since()`` is the time of the last successful poll.
Each poll also reads the log's epoch (table ``log_epoch``) and head: an older copy of the
file put back, or a new file, is data loss, handled as the server buses do (``_bus``).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from authstate.errors import StoreUnavailable
from authstate.stores._bus import log_went_back
from authstate.stores._sqlite_db import (
    IMMEDIATE,
    SNAPSHOT,
    SQLiteBase,
    _is_busy,
    _latest_seq,
    _make_epoch,
    _one,
)
from authstate.stores.base import LATEST, Change, ChangeKind, ChangeListener, LogRead, Reconciler

log = logging.getLogger("authstate")

_BUMP_GENERATION = (
    "INSERT INTO user_generations (user_id, generation) VALUES (?, 1)"
    " ON CONFLICT (user_id) DO UPDATE SET generation = generation + 1"
)
_GENERATION = "SELECT generation FROM user_generations WHERE user_id = ?"
_CHANGES_SINCE = (
    "SELECT seq, kind, value, until, generation FROM changes WHERE seq > ? ORDER BY seq"
)
_ACTIVE_REVOCATIONS = (
    "SELECT seq, kind, value, until, generation FROM changes"
    " WHERE kind IN ('jti', 'sid', 'user', 'roles') AND until >= ? ORDER BY seq"
)


def _change(row: Sequence[Any]) -> Change:
    return Change(ChangeKind(row[1]), row[2], row[3], row[4], row[0])


class SQLiteBus(SQLiteBase):
    """``ChangeBus`` and ``Generations`` for ``SQLiteStore``."""

    # -- revocation state and the change log (the bus) -----------------------------------------
    async def publish(self, change: Change) -> Change:
        sql = "INSERT INTO changes (kind, value, until, generation) VALUES (?, ?, ?, ?)"
        cursor = await self._execute(
            sql, change.kind.value, change.value, change.until, change.generation
        )
        stored = replace(change, seq=int(cursor.lastrowid or 0))
        if self._poller is not None:
            self._delivered.add(stored.seq)  # the poller will see it too: deliver it once
        self._deliver(stored)
        return stored

    async def changes_since(self, seq: int) -> list[Change]:
        return [_change(row) for row in await self._fetchall(_CHANGES_SINCE, seq)]

    async def active_revocations(self, now: float) -> tuple[list[Change], int]:
        def op(db: sqlite3.Connection) -> tuple[list[Change], int]:
            rows = db.execute(_ACTIVE_REVOCATIONS, (now,)).fetchall()
            return [_change(row) for row in rows], _latest_seq(db)

        return await self._run(op, SNAPSHOT)

    async def read_log(self, seq: int) -> LogRead:
        def op(db: sqlite3.Connection) -> LogRead | None:
            try:
                row = _one(db, "SELECT epoch FROM log_epoch WHERE id = 1", ())
            except sqlite3.OperationalError as exc:
                if _is_busy(exc):
                    raise
                row = None  # no such table: a file restored from before epochs existed
            if row is None:
                return None
            rows = [] if seq >= LATEST else db.execute(_CHANGES_SINCE, (seq,)).fetchall()
            return LogRead(str(row[0]), _latest_seq(db), [_change(r) for r in rows])

        read = await self._run(op, SNAPSHOT)
        if read is None:
            await self._run(_make_epoch, IMMEDIATE)
            read = await self._run(op, SNAPSHOT)
        if read is None:
            raise StoreUnavailable(reason=f"SQLite {self.path}: the change log has no epoch")
        return read

    async def listen(
        self, listener: ChangeListener, *, reconcile: Reconciler | None = None
    ) -> None:
        self._listeners.append(listener)
        if reconcile is not None:
            self._reconcilers.append(reconcile)
        if self._poller is None:
            started = self._clock.monotonic()
            head = await self.read_log(LATEST)
            self._polled_seq, self._epoch = head.head, head.epoch
            self._healthy_since = started
            self._poller = asyncio.create_task(self._poll_loop(), name="authstate-sqlite-bus")

    def bus_healthy_since(self) -> float | None:
        return self._healthy_since

    def bus_lag(self) -> float | None:
        if self._healthy_since is None or self._last_poll_seconds is None:
            return None
        # A change waits for the next poll at worst, then for that poll's read.
        return self._poll_interval + self._last_poll_seconds

    def describe_bus(self) -> str:
        return f"poll of the change log every {self._poll_interval:g} s"

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval)
            started = self._clock.monotonic()
            try:
                await self._poll()
                self._last_poll_seconds = self._clock.monotonic() - started
            except Exception:
                if self._healthy_since is not None:
                    log.warning("SQLite change log poll failed", exc_info=True)
                self._healthy_since = None  # fail closed until a poll succeeds again
                self._reconcile_due = True  # and rebuild from the store before it does
                continue
            self._healthy_since = started

    async def _poll(self) -> None:
        """Deliver the changes above the polled seq; reconcile first when due or when the
        file lost data (an older copy put back: the head went below the polled seq, or a
        new file: another epoch). Raises store and reconciler errors."""
        read = await self.read_log(self._polled_seq)
        lost = log_went_back(read, self._epoch, self._polled_seq)
        if lost:
            log.warning(
                "the SQLite change log went back (epoch %s seq %d -> epoch %s head %d): the"
                " store lost data; reconciling and following the new log",
                self._epoch,
                self._polled_seq,
                read.epoch,
                read.head,
            )
            self._reconcile_due = True
            self._healthy_since = None  # caches may hold what the file lost: bypass them
        if self._reconcile_due:
            for reconcile in list(self._reconcilers):
                await reconcile()
            self._reconcile_due = False
        if lost:
            # The reconcilers read the file after ``read``: they cover its changes.
            self._epoch, self._polled_seq = read.epoch, read.head
            self._delivered.clear()
            return
        self._epoch = read.epoch
        for change in read.changes:
            self._polled_seq = max(self._polled_seq, change.seq)
            if change.seq not in self._delivered:
                self._deliver(change)
        # Published here and now seen (or purged before we looked): forget them.
        self._delivered = {seq for seq in self._delivered if seq > self._polled_seq}

    def _deliver(self, change: Change) -> None:
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:
                # One broken listener must not stop delivery to the others or kill the bus.
                log.exception("change listener failed")

    async def bump_user_generation(self, user_id: str) -> int:
        def op(db: sqlite3.Connection) -> int:
            db.execute(_BUMP_GENERATION, (user_id,))
            return int(_one(db, _GENERATION, (user_id,))[0])

        return await self._run(op, IMMEDIATE)

    async def get_user_generation(self, user_id: str) -> int:
        row = await self._fetchone(_GENERATION, user_id)
        return 0 if row is None else int(row[0])
