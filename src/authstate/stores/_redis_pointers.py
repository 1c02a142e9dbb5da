"""Bucket entries of the Redis store: how a secret key or a public handle finds its user.

A user's records live in the user's slot, which a lookup by key or handle cannot compute,
so a key bucket maps the key (``key_bytes``) to the user's tag and a handle bucket maps the
handle to it (``_redis_layout``). Entries are hints, written outside the records' script
(they hash to other slots): the records say which key is current, so a stale entry finds
nothing. Uniqueness of keys and handles is claimed on the entry itself (``HSETNX``) before
the record is written, and an entry whose record is gone or has moved on may be taken over
(compare-and-set), never one that is live.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from authstate.errors import Conflict
from authstate.stores._redis_accounts import RedisAccess


class RedisPointers(RedisAccess):
    """Bucket plumbing for ``RedisStore`` (a mixin)."""

    async def _tag_of_key(self, key: bytes) -> bytes | None:
        async with self._redis() as client:
            raw = await client.hget(self.layout.key_bucket(key), key)
        return None if raw is None else bytes(raw)

    async def _tag_of_handle(self, handle: bytes) -> bytes | None:
        async with self._redis() as client:
            raw = await client.hget(self.layout.handle_bucket(handle), handle)
        return None if raw is None else bytes(raw)

    async def _claim(
        self, bucket: bytes, field: bytes, tag: bytes, taken: Callable[[bytes], Awaitable[bool]]
    ) -> bool:
        """Point ``field`` of ``bucket`` at ``tag`` unless it names another live record.

        Returns True when this call wrote the entry, False when it already held ``tag``;
        raises ``Conflict`` when another live record holds ``field``: ``taken(old)`` says
        whether one of the records of the user tagged ``old`` does (an entry holding ``tag``
        itself may be this record's own, claimed by a parallel rotation, or another record
        of the same user).
        """
        for _ in range(3):  # the entry may vanish between our reads: look again
            async with self._redis() as client:
                if await client.hsetnx(bucket, field, tag):
                    return True
                old = await client.hget(bucket, field)
            if old is None:
                continue
            if await taken(old):
                break
            if old == tag:
                return False
            # A stale entry (its record is gone or moved on): take it over, unless it changed.
            if await self._run("SWAP_ENTRY", [bucket], [field, old, tag]):
                return True
        raise Conflict("a session with this key or handle exists")

    async def _key_owner(self, key: bytes, tag: bytes) -> bytes | None:
        """The handle of the record of the user tagged ``tag`` whose key is ``key``."""
        raw = await self._run("GET_SESSION", [self.layout.records_of(tag)], [b"2", key])
        return bytes(raw[1]) if raw else None

    async def _handle_is_live(self, handle: bytes, tag: bytes) -> bool:
        raw = await self._run("GET_SESSION", [self.layout.records_of(tag)], [b"1", handle])
        return bool(raw)

    async def _drop(self, bucket: bytes, field: bytes, tag: bytes) -> None:
        await self._run("DROP_ENTRY", [bucket], [field, tag])

    async def _forget(self, tag: bytes, key: bytes, previous: bytes, handle: bytes) -> None:
        """Remove the bucket entries of a deleted record (``previous``: '' or '=' key)."""
        k = self.layout
        await self._drop(k.key_bucket(key), key, tag)
        if previous:
            await self._drop(k.key_bucket(previous[1:]), previous[1:], tag)
        await self._drop(k.handle_bucket(handle), handle, tag)
