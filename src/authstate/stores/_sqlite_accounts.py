"""Signing keys, users and login-failure counters of the SQLite store (a part of
``SQLiteStore``)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from authstate.stores._sqlite_db import IMMEDIATE, SQLiteBase, _one, _storable
from authstate.stores.base import StoredKey, UserRecord

_COUNT_FAILURES = "SELECT COUNT(*) FROM login_failures WHERE bucket = ? AND at > ?"
_USER_SELECT = "SELECT id, username, password_hash, roles, created_at, disabled FROM users"
_KEY_SELECT = (
    "SELECT kid, alg, sealed_private, public_jwk, created_at, retire_after FROM signing_keys"
)


def _user(row: Sequence[Any]) -> UserRecord:
    return UserRecord(row[0], row[1], row[2], tuple(json.loads(row[3])), row[4], bool(row[5]))


def _key(row: Sequence[Any]) -> StoredKey:
    return StoredKey(row[0], row[1], bytes(row[2]), row[3], row[4], row[5])


class SQLiteAccounts(SQLiteBase):
    """``KeyStore``, ``UserStore`` and ``LoginThrottle`` for ``SQLiteStore``."""

    # -- keys ---------------------------------------------------------------------------------
    async def save_key(self, key: StoredKey) -> None:
        await self._execute(
            "INSERT INTO signing_keys (kid, alg, sealed_private, public_jwk, created_at,"
            " retire_after) VALUES (?, ?, ?, ?, ?, ?)",
            *(key.kid, key.alg, key.sealed_private, key.public_jwk, key.created_at),
            key.retire_after,
        )

    async def load_keys(self) -> list[StoredKey]:
        return [
            _key(row) for row in await self._fetchall(_KEY_SELECT + " ORDER BY created_at, rowid")
        ]

    async def retire_key(self, kid: str, retire_after: float) -> None:
        await self._execute(
            "UPDATE signing_keys SET retire_after = ? WHERE kid = ?", retire_after, kid
        )

    async def delete_key(self, kid: str) -> None:
        await self._execute("DELETE FROM signing_keys WHERE kid = ?", kid)

    # -- users --------------------------------------------------------------------------------
    async def create_user(self, user: UserRecord) -> None:
        await self._execute(
            "INSERT INTO users (id, username, password_hash, roles, created_at, disabled)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            *(user.id, user.username, user.password_hash, json.dumps(list(user.roles))),
            *(user.created_at, int(user.disabled)),
        )

    async def get_user(self, user_id: str) -> UserRecord | None:
        row = await self._fetchone(_USER_SELECT + " WHERE id = ?", user_id)
        return None if row is None else _user(row)

    async def get_user_by_name(self, username: str) -> UserRecord | None:
        row = await self._fetchone(_USER_SELECT + " WHERE username = ?", username)
        return None if row is None else _user(row)

    async def list_users(self) -> list[UserRecord]:
        return [_user(row) for row in await self._fetchall(_USER_SELECT + " ORDER BY username")]

    async def update_user(
        self,
        user_id: str,
        *,
        password_hash: str | None = None,
        roles: tuple[str, ...] | None = None,
        disabled: bool | None = None,
    ) -> UserRecord | None:
        def op(db: sqlite3.Connection) -> UserRecord | None:
            row = _one(db, _USER_SELECT + " WHERE id = ?", (user_id,))
            if row is None:
                return None
            user = _user(row)
            new = replace(
                user,
                password_hash=user.password_hash if password_hash is None else password_hash,
                roles=user.roles if roles is None else tuple(roles),
                disabled=user.disabled if disabled is None else disabled,
            )
            sql = "UPDATE users SET password_hash = ?, roles = ?, disabled = ? WHERE id = ?"
            db.execute(sql, (new.password_hash, json.dumps(list(new.roles)), new.disabled, user_id))
            return new

        return await self._run(op, IMMEDIATE) if _storable((user_id,)) else None

    # -- login throttling ---------------------------------------------------------------------
    async def count_failures(self, bucket: str, *, now: float, window: float) -> int:
        row = await self._fetchone(_COUNT_FAILURES, bucket, now - window)
        return 0 if row is None else int(row[0])

    async def record_failure(self, bucket: str, *, now: float, window: float) -> int:
        def op(db: sqlite3.Connection) -> int:
            sql = "INSERT INTO login_failures (bucket, at, forget_at) VALUES (?, ?, ?)"
            db.execute(sql, (bucket, now, now + window))
            return int(_one(db, _COUNT_FAILURES, (bucket, now - window))[0])

        return await self._run(op, IMMEDIATE)

    async def clear_failures(self, bucket: str) -> None:
        if _storable((bucket,)):
            await self._execute("DELETE FROM login_failures WHERE bucket = ?", bucket)
