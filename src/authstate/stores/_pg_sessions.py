"""Sessions and refresh families in PostgreSQL (a part of ``PostgresStore``).

Each method is one statement, except ``swap_refresh_key``: a conditional ``UPDATE`` of the
family row (only while it still has the key that was found) and the consumed key's row, in
one transaction. A second swap of the same family waits for the first to commit, then no
longer matches and writes nothing; a logout that deleted the row first leaves it nothing to
update. The rotation rule itself is ``authstate.rotation``.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

from authstate.stores import _pg_rows as rows
from authstate.stores._pg_accounts import PgAccess
from authstate.stores._pg_reader import UNUSABLE
from authstate.stores._pg_rows import (
    SESSION_COLUMNS,
    affected,
    handle_to_db,
    key_to_db,
    opt_handle_to_db,
    opt_kind_to_db,
    opt_to_db,
    to_db,
)
from authstate.stores.base import SessionRecord
from authstate.stores.session_data import check_update, merge

_INSERT_SESSION = (
    f"INSERT INTO authstate_sessions ({SESSION_COLUMNS})"  # noqa: S608 - constants only
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,"
    " $19)"
)
# The cold session lookup (also prepared on the store's held reading connection).
GET_SESSION = "SELECT * FROM authstate_sessions WHERE key = $1"


class PgSessions(PgAccess):
    """``SessionStore`` for ``PostgresStore`` (a mixin)."""

    async def create_session(self, record: SessionRecord) -> None:
        await self._write("execute", _INSERT_SESSION, *rows.session_row(record))

    async def _one(self, sql: str, *args: Any, read_only: bool = True) -> SessionRecord | None:
        row = await self._query("fetchrow", sql, *args, read_only=read_only)
        return None if row is None else rows.session(row)

    async def _many(self, sql: str, *args: Any, read_only: bool = True) -> list[SessionRecord]:
        found = await self._query("fetch", sql, *args, read_only=read_only)
        return [rows.session(row) for row in found]

    async def get_session(self, key: str) -> SessionRecord | None:
        # On the held connection when it is free, else through the pool.
        stored = key_to_db(key)
        row = await self._reader.fetchrow(stored)
        if row is UNUSABLE:
            row = await self._query("fetchrow", GET_SESSION, stored)
        return None if row is None else rows.session(row, key)

    async def touch_session(self, key: str, last_seen_at: float) -> bool:
        # GREATEST: nodes write last_seen throttled and possibly out of order. Repeating the
        # statement is harmless, so it retries like a read.
        status = await self._query(
            "execute",
            "UPDATE authstate_sessions SET last_seen_at = GREATEST(last_seen_at, $2)"
            " WHERE key = $1",
            key_to_db(key),
            last_seen_at,
        )
        return affected(status) > 0

    async def replace_session_key(
        self, old_key: str, new_key: str, *, roles: tuple[str, ...] | None = None
    ) -> SessionRecord | None:
        return await self._one(
            "UPDATE authstate_sessions SET key = $2, roles = COALESCE($3, roles)"
            " WHERE key = $1 RETURNING *",
            key_to_db(old_key),
            key_to_db(new_key),
            None if roles is None else json.dumps(list(roles)),
            read_only=False,
        )

    async def delete_session(self, key: str) -> SessionRecord | None:
        sql = "DELETE FROM authstate_sessions WHERE key = $1 RETURNING *"
        return await self._one(sql, key_to_db(key), read_only=False)

    async def delete_session_by_handle(
        self, handle: str, *, user_id: str | None = None
    ) -> SessionRecord | None:
        return await self._one(
            "DELETE FROM authstate_sessions"
            " WHERE handle = $1 AND ($2::text IS NULL OR user_id = $2) RETURNING *",
            handle_to_db(handle),
            opt_to_db(user_id),
            read_only=False,
        )

    async def list_sessions(self, user_id: str, *, kind: str | None = None) -> list[SessionRecord]:
        return await self._many(
            "SELECT * FROM authstate_sessions"
            ' WHERE user_id = $1 AND ($2::"char" IS NULL OR kind = $2)'
            " ORDER BY created_at DESC, inserted DESC",
            to_db(user_id),
            opt_kind_to_db(kind),
        )

    async def delete_user_sessions(
        self, user_id: str, *, except_handle: str | None = None
    ) -> list[SessionRecord]:
        return await self._many(
            "DELETE FROM authstate_sessions"
            " WHERE user_id = $1 AND ($2::bytea IS NULL OR handle <> $2) RETURNING *",
            to_db(user_id),
            opt_handle_to_db(except_handle),
            read_only=False,
        )

    async def find_refresh(self, key: str) -> SessionRecord | None:
        # One statement, one snapshot: the family holding the key now, or that consumed it.
        return await self._one(
            "SELECT * FROM authstate_sessions WHERE key = $1 UNION ALL"
            " (SELECT s.* FROM authstate_consumed c JOIN authstate_sessions s USING (handle)"
            " WHERE c.key = $1) LIMIT 1",
            key_to_db(key),
        )

    async def swap_refresh_key(
        self, family: SessionRecord, successor_key: str, *, now: float
    ) -> SessionRecord | None:
        async with self._transaction() as conn:
            # A concurrent swap holding this row makes us wait; when it commits, the row no
            # longer matches (its key moved on) and nothing is written.
            row = await conn.fetchrow(
                "UPDATE authstate_sessions SET key = $3, previous_key = key, rotated_at = $4,"
                " last_seen_at = $4 WHERE handle = $1 AND key = $2 RETURNING *",
                handle_to_db(family.handle),
                key_to_db(family.key),
                key_to_db(successor_key),
                now,
            )
            if row is None:
                return None
            await conn.execute(
                "INSERT INTO authstate_consumed (key, handle, expires_at) VALUES ($1, $2, $3)"
                " ON CONFLICT (key) DO UPDATE SET handle = $2, expires_at = $3",
                key_to_db(family.key),
                row["handle"],
                row["expires_at"],
            )
            return rows.session(row)

    # -- session data ---------------------------------------------------------------------------
    async def get_session_data(self, handle: str) -> dict[str, Any] | None:
        row = await self._query(
            "fetchrow",
            "SELECT data FROM authstate_sessions WHERE handle = $1",
            handle_to_db(handle),
        )
        return None if row is None else rows.mapping(row["data"])

    async def update_session_data(
        self,
        handle: str,
        changes: Mapping[str, Any],
        *,
        remove: Collection[str] = (),
        max_bytes: int,
    ) -> dict[str, Any] | None:
        check_update(changes, remove)
        stored = handle_to_db(handle)
        async with self._transaction() as conn:
            # FOR UPDATE: a concurrent update of the same record waits here until this one
            # commits, then merges into what it wrote (last writer wins per key).
            row = await conn.fetchrow(
                "SELECT data FROM authstate_sessions WHERE handle = $1 FOR UPDATE", stored
            )
            if row is None:
                return None
            merged, new_text = merge(rows.mapping(row["data"]), changes, remove, max_bytes)
            await conn.execute(
                "UPDATE authstate_sessions SET data = $2 WHERE handle = $1",
                stored,
                None if new_text == "{}" else new_text,
            )
            return merged
