"""Signing keys, users, login failures and revocation generations in PostgreSQL.

The plain records of the PostgreSQL store, kept apart from sessions and the bus: each
method is one statement, except ``record_failure``, which takes a per-bucket advisory lock
so that concurrent failures count 1, 2, 3 … and none can slip under the limit.
"""

from __future__ import annotations

import json
from contextlib import AbstractAsyncContextManager
from typing import Any

from authstate.stores import _pg_rows as rows
from authstate.stores._pg_reader import HeldReader
from authstate.stores._pg_rows import opt_to_db, to_db
from authstate.stores.base import StoredKey, UserRecord

_COUNT_FAILURES = "SELECT count(*) FROM authstate_failures WHERE bucket = $1 AND at > $2"


class PgAccess:
    """What the mixins of ``PostgresStore`` use from it."""

    async def _query(self, method: str, sql: str, *args: Any, read_only: bool = True) -> Any:
        """One statement, retried once on a fresh connection when that is safe."""
        raise NotImplementedError

    async def _write(self, method: str, sql: str, *args: Any) -> Any:
        """One statement that must not run twice (retried only if nothing was sent)."""
        raise NotImplementedError

    # The cold session lookup's own connection (``_pg_reader``).
    _reader: HeldReader

    def _transaction(self, isolation: str = "read_committed") -> AbstractAsyncContextManager[Any]:
        raise NotImplementedError


class PgAccounts(PgAccess):
    """The ``Store`` methods for keys, users, failures and generations (a mixin)."""

    async def bump_user_generation(self, user_id: str) -> int:
        value = await self._write(
            "fetchval",
            "INSERT INTO authstate_generations AS g (user_id, generation) VALUES ($1, 1)"
            " ON CONFLICT (user_id) DO UPDATE SET generation = g.generation + 1"
            " RETURNING generation",
            to_db(user_id),
        )
        return int(value)

    async def get_user_generation(self, user_id: str) -> int:
        sql = "SELECT generation FROM authstate_generations WHERE user_id = $1"
        value = await self._query("fetchval", sql, to_db(user_id))
        return 0 if value is None else int(value)

    # -- keys ---------------------------------------------------------------------------------
    async def save_key(self, key: StoredKey) -> None:
        await self._write(
            "execute",
            "INSERT INTO authstate_keys"
            " (kid, alg, sealed_private, public_jwk, created_at, retire_after)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            to_db(key.kid),
            to_db(key.alg),
            key.sealed_private,
            to_db(key.public_jwk),
            key.created_at,
            key.retire_after,
        )

    async def load_keys(self) -> list[StoredKey]:
        found = await self._query("fetch", "SELECT * FROM authstate_keys ORDER BY created_at, kid")
        return [rows.stored_key(row) for row in found]

    async def retire_key(self, kid: str, retire_after: float) -> None:
        sql = "UPDATE authstate_keys SET retire_after = $2 WHERE kid = $1"
        await self._query("execute", sql, to_db(kid), retire_after)  # idempotent

    async def delete_key(self, kid: str) -> None:
        await self._query("execute", "DELETE FROM authstate_keys WHERE kid = $1", to_db(kid))

    # -- users --------------------------------------------------------------------------------
    async def create_user(self, user: UserRecord) -> None:
        await self._write(
            "execute",
            "INSERT INTO authstate_users"
            " (id, username, password_hash, roles, created_at, disabled)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            to_db(user.id),
            to_db(user.username),
            to_db(user.password_hash),
            json.dumps(list(user.roles)),
            user.created_at,
            user.disabled,
        )

    async def _users(self, sql: str, *args: Any) -> list[UserRecord]:
        return [rows.user(row) for row in await self._query("fetch", sql, *args)]

    async def get_user(self, user_id: str) -> UserRecord | None:
        users = await self._users("SELECT * FROM authstate_users WHERE id = $1", to_db(user_id))
        return users[0] if users else None

    async def get_user_by_name(self, username: str) -> UserRecord | None:
        sql = "SELECT * FROM authstate_users WHERE username = $1"
        users = await self._users(sql, to_db(username))
        return users[0] if users else None

    async def list_users(self) -> list[UserRecord]:
        # Sorted here, by code point: the database's collation may order names differently.
        return sorted(await self._users("SELECT * FROM authstate_users"), key=_username)

    async def update_user(
        self,
        user_id: str,
        *,
        password_hash: str | None = None,
        roles: tuple[str, ...] | None = None,
        disabled: bool | None = None,
    ) -> UserRecord | None:
        # Setting the same values twice is harmless, so it retries like a read.
        users = await self._users(
            "UPDATE authstate_users SET password_hash = COALESCE($2, password_hash),"
            " roles = COALESCE($3, roles), disabled = COALESCE($4, disabled)"
            " WHERE id = $1 RETURNING *",
            to_db(user_id),
            opt_to_db(password_hash),
            None if roles is None else json.dumps(list(roles)),
            disabled,
        )
        return users[0] if users else None

    # -- login throttling ---------------------------------------------------------------------
    async def count_failures(self, bucket: str, *, now: float, window: float) -> int:
        return int(await self._query("fetchval", _COUNT_FAILURES, to_db(bucket), now - window))

    async def record_failure(self, bucket: str, *, now: float, window: float) -> int:
        stored = to_db(bucket)
        async with self._transaction() as conn:
            # Per-bucket lock until commit: concurrent failures each see all earlier ones, so
            # the counts they return are distinct (1, 2, 3 …) and the limit cannot be skipped.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext('authstate_failures'), hashtext($1))",
                stored,
            )
            await conn.execute(
                "INSERT INTO authstate_failures (bucket, at, forget_at) VALUES ($1, $2, $3)",
                stored,
                now,
                now + window,
            )
            return int(await conn.fetchval(_COUNT_FAILURES, stored, now - window))

    async def clear_failures(self, bucket: str) -> None:
        sql = "DELETE FROM authstate_failures WHERE bucket = $1"
        await self._query("execute", sql, to_db(bucket))  # idempotent


def _username(user: UserRecord) -> str:
    return user.username
