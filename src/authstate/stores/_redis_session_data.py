"""Session data in Redis (a part of ``RedisStore``): the ``data`` field of the record's hash.

An update is an optimistic compare-and-set: read the field, merge in Python (where the cap
and the JSON rules are checked, exactly as in the other stores), then a script writes the
merged text only if the field still holds what was read; otherwise merge again into the
new text. Merging in Python rather than in Lua keeps one JSON implementation (Lua's cjson
would turn an empty list into an object and re-format numbers). Each round that loses does
so because another update won, so the retries end; a bound turns pathological contention
into ``StoreUnavailable`` instead of a spin.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

from authstate.errors import StoreUnavailable
from authstate.stores._redis_sessions import RedisSessions
from authstate.stores.session_data import check_update, merge

_MAX_ROUNDS = 100


class RedisSessionData(RedisSessions):
    """``SessionDataStore`` for ``RedisStore``."""

    async def _data_text(self, handle: str) -> tuple[bytes, bytes | None] | None:
        """The record's name and its data text as stored now (None: no record)."""
        owner = await self._owner(handle)
        if owner is None:
            return None
        name = self.layout.session(owner, handle)
        async with self._redis() as client:
            return name, await client.hget(name, b"data")

    async def get_session_data(self, handle: str) -> dict[str, Any] | None:
        found = await self._data_text(handle)
        if found is None or found[1] is None:
            return None
        return dict(json.loads(found[1]))

    async def update_session_data(
        self,
        handle: str,
        changes: Mapping[str, Any],
        *,
        remove: Collection[str] = (),
        max_bytes: int,
    ) -> dict[str, Any] | None:
        check_update(changes, remove)
        found = await self._data_text(handle)
        if found is None:
            return None
        name, text = found
        for _ in range(_MAX_ROUNDS):
            if text is None:
                return None  # deleted or expired meanwhile
            merged, new_text = merge(json.loads(text), changes, remove, max_bytes)
            written = await self._run("UPDATE_SESSION_DATA", [name], [text, new_text.encode()])
            if written is None:
                return None  # deleted or expired meanwhile
            if written == 1:
                return merged
            async with self._redis() as client:
                text = await client.hget(name, b"data")
        raise StoreUnavailable(reason=f"session data of {handle!r} too contended to update")
