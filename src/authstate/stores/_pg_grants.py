"""Live roles and claims in PostgreSQL (a part of ``PostgresStore``).

``set_user_grants`` is one transaction: the grants row is upserted (its row lock orders
concurrent changes of one user, so versions count 1, 2, 3 …) and every session row of the
user is rewritten with the result.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from authstate.stores._pg_accounts import PgAccess
from authstate.stores._pg_rows import to_db
from authstate.stores.base import UserGrants

_UPSERT = (
    "INSERT INTO authstate_grants AS g (user_id, version, roles, claims)"
    " VALUES ($1, 1, $2, COALESCE($3, '{}'))"
    " ON CONFLICT (user_id) DO UPDATE SET version = g.version + 1,"
    " roles = COALESCE($2, g.roles), claims = COALESCE($3, g.claims)"
    " RETURNING version, roles, claims"
)


def _grants(user_id: str, row: Any) -> UserGrants:
    roles = None if row["roles"] is None else tuple(json.loads(row["roles"]))
    return UserGrants(user_id, int(row["version"]), roles, json.loads(row["claims"]))


class PgGrants(PgAccess):
    """``GrantStore`` for ``PostgresStore`` (a mixin)."""

    async def set_user_grants(
        self,
        user_id: str,
        *,
        roles: tuple[str, ...] | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> UserGrants:
        async with self._transaction() as conn:
            row = await conn.fetchrow(
                _UPSERT,
                to_db(user_id),
                None if roles is None else json.dumps(list(roles)),
                None if claims is None else json.dumps(dict(claims)),
            )
            await conn.execute(
                "UPDATE authstate_sessions SET roles = COALESCE($2, roles),"
                " claims = NULLIF($3, '{}'),"
                " roles_version = $4 WHERE user_id = $1",
                to_db(user_id),
                row["roles"],
                row["claims"],
                row["version"],
            )
        return _grants(user_id, row)

    async def get_user_grants(self, user_id: str) -> UserGrants | None:
        row = await self._query(
            "fetchrow",
            "SELECT version, roles, claims FROM authstate_grants WHERE user_id = $1",
            to_db(user_id),
        )
        return None if row is None else _grants(user_id, row)
