"""Live roles and claims in Redis (a part of ``RedisStore``).

The grants hash lives in the user's slot beside the user's records, so ``set_user_grants``
is one script in one slot, on Redis Cluster too, and changes every record of the user.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from authstate.stores._redis_accounts import RedisAccess
from authstate.stores.base import UserGrants


class RedisGrants(RedisAccess):
    """``GrantStore`` for ``RedisStore`` (a mixin)."""

    async def set_user_grants(
        self,
        user_id: str,
        *,
        roles: tuple[str, ...] | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> UserGrants:
        k = self.layout
        version, roles_json, claims_json = await self._run(
            "SET_USER_GRANTS",
            [k.grants(user_id), k.records(user_id)],
            [
                b"0" if roles is None else b"1",
                json.dumps(list(roles or ())).encode(),
                b"0" if claims is None else b"1",
                json.dumps(dict(claims or {})).encode(),
            ],
        )
        return _grants(user_id, int(version), roles_json, claims_json)

    async def get_user_grants(self, user_id: str) -> UserGrants | None:
        async with self._redis() as client:
            f = await client.hgetall(self.layout.grants(user_id))
        if not f:
            return None
        return _grants(user_id, int(f[b"version"]), f.get(b"roles"), f.get(b"claims", b"{}"))


def _grants(user_id: str, version: int, roles: bytes | None, claims: bytes) -> UserGrants:
    return UserGrants(
        user_id,
        version,
        None if roles is None else tuple(json.loads(roles)),
        json.loads(claims),
    )
