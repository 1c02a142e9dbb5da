"""Live roles and claims in the SQLite store (a part of ``SQLiteStore``)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

from authstate.stores._sqlite_db import IMMEDIATE, SQLiteBase, _one, _storable
from authstate.stores.base import UserGrants

_GRANTS_SELECT = "SELECT version, roles, claims FROM user_grants WHERE user_id = ?"


def _grants(user_id: str, row: Any) -> UserGrants:
    roles = None if row[1] is None else tuple(json.loads(row[1]))
    return UserGrants(user_id, int(row[0]), roles, json.loads(row[2]))


class SQLiteGrants(SQLiteBase):
    """``GrantStore`` for ``SQLiteStore``."""

    async def set_user_grants(
        self,
        user_id: str,
        *,
        roles: tuple[str, ...] | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> UserGrants:
        if not _storable((user_id,)):
            raise ValueError("user id is not valid Unicode")

        def op(db: sqlite3.Connection) -> UserGrants:
            row = _one(db, _GRANTS_SELECT, (user_id,))
            current = UserGrants(user_id, 0, None, {}) if row is None else _grants(user_id, row)
            grants = UserGrants(
                user_id,
                current.version + 1,
                current.roles if roles is None else tuple(roles),
                dict(current.claims if claims is None else claims),
            )
            roles_json = None if grants.roles is None else json.dumps(list(grants.roles))
            claims_json = json.dumps(grants.claims)
            db.execute(
                "INSERT OR REPLACE INTO user_grants (user_id, version, roles, claims)"
                " VALUES (?, ?, ?, ?)",
                (user_id, grants.version, roles_json, claims_json),
            )
            db.execute(
                "UPDATE sessions SET roles = COALESCE(?, roles), claims = ?, roles_version = ?"
                " WHERE user_id = ?",
                (roles_json, claims_json, grants.version, user_id),
            )
            return UserGrants(user_id, grants.version, grants.roles, json.loads(claims_json))

        return await self._run(op, IMMEDIATE)

    async def get_user_grants(self, user_id: str) -> UserGrants | None:
        if not _storable((user_id,)):
            return None
        row = await self._fetchone(_GRANTS_SELECT, user_id)
        return None if row is None else _grants(user_id, row)
