"""Sessions and refresh families in the SQLite store (a part of ``SQLiteStore``)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any

import orjson

from authstate._frozen import builder
from authstate.stores._sqlite_db import IMMEDIATE, SQLiteBase, _one, _storable
from authstate.stores.base import SessionRecord
from authstate.stores.session_data import check_update, merge

_SESSION_SELECT = (
    "SELECT session_key, handle, user_id, kind, created_at, last_seen_at, expires_at,"
    " idle_timeout, roles, user_agent, ip, data, previous_key, rotated_at, generation,"
    " claims, roles_version, auth_time, remember FROM sessions"
)
_SESSION_BY_KEY = _SESSION_SELECT + " WHERE session_key = ?"
_SESSION_BY_HANDLE = _SESSION_SELECT + " WHERE handle = ?"
_SESSIONS_OF_USER = _SESSION_SELECT + " WHERE user_id = ? ORDER BY created_at DESC, id DESC"
_INSERT_SESSION = (
    "INSERT INTO sessions (session_key, handle, user_id, kind, created_at, last_seen_at,"
    " expires_at, idle_timeout, roles, user_agent, ip, data, previous_key, rotated_at,"
    " generation, claims, roles_version, auth_time, remember) VALUES (?, ?, ?, ?, ?, ?, ?, ?,"
    " ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# Compare-and-swap: only while the family still has the key the caller found.
_SWAP = (
    "UPDATE sessions SET session_key = ?, previous_key = session_key, rotated_at = ?,"
    " last_seen_at = ? WHERE handle = ? AND session_key = ?"
)
_CONSUME = (
    "INSERT OR REPLACE INTO consumed_keys (consumed_key, handle, expires_at) VALUES (?, ?, ?)"
)
# The family whose current key is the key, else the one that consumed it (constants only).
_CONSUMER = "(SELECT handle FROM consumed_keys WHERE consumed_key = ?1)"
_FIND_REFRESH = _SESSION_SELECT + " WHERE session_key = ?1 OR handle = " + _CONSUMER


def _session_row(r: SessionRecord) -> tuple[Any, ...]:
    return (
        *(r.key, r.handle, r.user_id, r.kind, r.created_at, r.last_seen_at, r.expires_at),
        *(r.idle_timeout, json.dumps(list(r.roles)), r.user_agent, r.ip, json.dumps(dict(r.data))),
        *(r.previous_key, r.rotated_at, r.generation),
        *(json.dumps(dict(r.claims)), r.roles_version, r.auth_time, int(r.remember)),
    )


_new_session = builder(SessionRecord)  # SessionRecord(...), every field positionally


def _object(text: str) -> dict[str, Any]:
    """The dict a data or claims column holds (most hold none: skip the parser)."""
    if text == "{}":
        return {}
    value: dict[str, Any] = json.loads(text)
    return value


def _roles(text: str) -> tuple[str, ...]:
    """The roles column: a JSON list of strings, as _session_row wrote it."""
    try:
        return tuple(orjson.loads(text))
    except orjson.JSONDecodeError:  # a lone surrogate escaped in a role name
        return tuple(json.loads(text))


def _session(row: Sequence[Any]) -> SessionRecord:
    # Read on every cold session lookup: positional, in the columns' (and fields') order.
    return _new_session(
        *row[:8],
        _roles(row[8]),
        row[9],
        row[10],
        _object(row[11]),
        *row[12:15],
        _object(row[15]),
        row[16],
        row[17],
        bool(row[18]),
    )


class SQLiteSessions(SQLiteBase):
    """``SessionStore`` for ``SQLiteStore``."""

    # -- sessions and refresh families ---------------------------------------------------------
    async def create_session(self, record: SessionRecord) -> None:
        await self._execute(_INSERT_SESSION, *_session_row(record))

    async def get_session(self, key: str) -> SessionRecord | None:
        # _fetchone's work, a coroutine frame fewer: every cold session lookup reads here.
        if not _storable((key,)):
            return None
        row = await self._run(lambda db: db.execute(_SESSION_BY_KEY, (key,)).fetchone())
        return None if row is None else _session(row)

    async def touch_session(self, key: str, last_seen_at: float) -> bool:
        # MAX: nodes write last_seen throttled and possibly out of order; never go backwards.
        sql = "UPDATE sessions SET last_seen_at = MAX(last_seen_at, ?) WHERE session_key = ?"
        if not _storable((key,)):
            return False
        return (await self._execute(sql, last_seen_at, key)).rowcount > 0

    async def replace_session_key(
        self, old_key: str, new_key: str, *, roles: tuple[str, ...] | None = None
    ) -> SessionRecord | None:
        def op(db: sqlite3.Connection) -> SessionRecord | None:
            row = _one(db, _SESSION_BY_KEY, (old_key,))
            if row is None:
                return None
            record = _session(row)
            updated = replace(record, key=new_key, roles=record.roles if roles is None else roles)
            sql = "UPDATE sessions SET session_key = ?, roles = ? WHERE handle = ?"
            db.execute(sql, (new_key, json.dumps(list(updated.roles)), record.handle))
            return updated

        return await self._run(op, IMMEDIATE) if _storable((old_key,)) else None

    async def delete_session(self, key: str) -> SessionRecord | None:
        return await self._delete_one(_SESSION_BY_KEY, key, owner=None)

    async def delete_session_by_handle(
        self, handle: str, *, user_id: str | None = None
    ) -> SessionRecord | None:
        return await self._delete_one(_SESSION_BY_HANDLE, handle, owner=user_id)

    async def _delete_one(self, sql: str, value: str, owner: str | None) -> SessionRecord | None:
        def op(db: sqlite3.Connection) -> SessionRecord | None:
            row = _one(db, sql, (value,))
            if row is None or (owner is not None and row[2] != owner):
                return None
            db.execute("DELETE FROM sessions WHERE handle = ?", (row[1],))
            return _session(row)

        return await self._run(op, IMMEDIATE) if _storable((value, owner or "")) else None

    async def list_sessions(self, user_id: str, *, kind: str | None = None) -> list[SessionRecord]:
        records = [_session(row) for row in await self._fetchall(_SESSIONS_OF_USER, user_id)]
        return [r for r in records if kind is None or r.kind == kind]

    async def delete_user_sessions(
        self, user_id: str, *, except_handle: str | None = None
    ) -> list[SessionRecord]:
        def op(db: sqlite3.Connection) -> list[SessionRecord]:
            rows = db.execute(_SESSIONS_OF_USER, (user_id,)).fetchall()
            doomed = [_session(row) for row in rows if row[1] != except_handle]
            db.executemany("DELETE FROM sessions WHERE handle = ?", [(r.handle,) for r in doomed])
            return doomed

        return await self._run(op, IMMEDIATE) if _storable((user_id,)) else []

    async def find_refresh(self, key: str) -> SessionRecord | None:
        row = await self._fetchone(_FIND_REFRESH, key)
        return None if row is None else _session(row)

    async def swap_refresh_key(
        self, family: SessionRecord, successor_key: str, *, now: float
    ) -> SessionRecord | None:
        def op(db: sqlite3.Connection) -> SessionRecord | None:
            swapped = db.execute(_SWAP, (successor_key, now, now, family.handle, family.key))
            if swapped.rowcount == 0:
                return None  # the family is gone or its key moved on: the caller looks again
            db.execute(_CONSUME, (family.key, family.handle, family.expires_at))
            # No read back: the swap only wrote these fields, and nothing else of a family
            # changes after it is created (a changed key would have failed the swap).
            return replace(
                family, key=successor_key, previous_key=family.key, rotated_at=now, last_seen_at=now
            )

        return await self._run(op, IMMEDIATE) if _storable((family.key,)) else None

    # -- session data ---------------------------------------------------------------------------
    async def get_session_data(self, handle: str) -> dict[str, Any] | None:
        row = await self._fetchone("SELECT data FROM sessions WHERE handle = ?", handle)
        return None if row is None else dict(json.loads(row[0]))

    async def update_session_data(
        self,
        handle: str,
        changes: Mapping[str, Any],
        *,
        remove: Collection[str] = (),
        max_bytes: int,
    ) -> dict[str, Any] | None:
        check_update(changes, remove)

        # Read, merge and write under the write lock (IMMEDIATE): no other connection can
        # change the data in between, so every key another writer set since stays.
        def op(db: sqlite3.Connection) -> dict[str, Any] | None:
            row = _one(db, "SELECT data FROM sessions WHERE handle = ?", (handle,))
            if row is None:
                return None
            merged, text = merge(json.loads(row[0]), changes, remove, max_bytes)
            db.execute("UPDATE sessions SET data = ? WHERE handle = ?", (text, handle))
            return merged

        return await self._run(op, IMMEDIATE) if _storable((handle,)) else None
