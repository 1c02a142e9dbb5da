"""Session data in Redis (a part of ``RedisStore``): the ``data`` field of the record.

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
from authstate.stores._redis_layout import key_bytes
from authstate.stores._redis_sessions import RedisSessions
from authstate.stores.session_data import check_update, merge

_MAX_ROUNDS = 100


class RedisSessionData(RedisSessions):
    """``SessionDataStore`` for ``RedisStore``."""

    async def _data_text(self, handle: str) -> tuple[bytes, bytes | None] | None:
        """The tag of the record's user and its data text as stored now (None: no record)."""
        raw = key_bytes(handle)
        tag = await self._tag_of_handle(raw)
        if tag is None:
            return None
        return tag, await self._read_data(tag, raw)

    async def _read_data(self, tag: bytes, handle: bytes) -> bytes | None:
        found = await self._run("GET_SESSION", [self.layout.records_of(tag)], [b"1", handle])
        return bytes(found[11]) if found else None

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
        tag, text = found
        name, raw = self.layout.records_of(tag), key_bytes(handle)
        for _ in range(_MAX_ROUNDS):
            if text is None:
                return None  # deleted or expired meanwhile
            merged, new_text = merge(json.loads(text), changes, remove, max_bytes)
            written = await self._run("UPDATE_SESSION_DATA", [name], [raw, text, new_text.encode()])
            if written is None:
                return None  # deleted or expired meanwhile
            if written == 1:
                return merged
            text = await self._read_data(tag, raw)
        raise StoreUnavailable(reason=f"session data of {handle!r} too contended to update")
