"""Pointers of the Redis store: how a secret key or a public handle finds its record.

A record lives in its user's slot, which a lookup by key or handle cannot compute, so
``P:k:<key>`` holds ``[user, handle]`` and ``P:h:<handle>`` holds the user. Pointers are
hints, written outside the record's script (they hash to other slots): the record says
which key is current, so a stale pointer finds nothing. Uniqueness of keys and handles is
claimed on the pointer itself (``SET NX``) before the record is written, and a pointer
whose record is gone or has moved on may be taken over (compare-and-set), never one that
is live.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from authstate.errors import Conflict
from authstate.stores._redis_accounts import RedisAccess
from authstate.stores._redis_layout import dec, enc, from_pointer, ms, pointer
from authstate.stores.base import SessionRecord

_CLAIM_MS = 30_000  # a pointer claimed before its expiry is known lives this long at first


class RedisPointers(RedisAccess):
    """Pointer plumbing for ``RedisStore`` (a mixin)."""

    async def _follow(self, key: str) -> tuple[str, str] | None:
        async with self._redis() as client:
            raw = await client.get(self.layout.key_pointer(key))
        return None if raw is None else from_pointer(raw)

    async def _claim(
        self,
        name: bytes,
        value: bytes,
        live: Callable[[bytes], Awaitable[bool]],
        *,
        until: float | None = None,
    ) -> bool:
        """Point ``name`` at ``value`` unless it already points at a live record elsewhere.

        Returns True when this call wrote the pointer, False when it already held ``value``;
        raises ``Conflict`` when it belongs to another live record. ``live(old)`` decides
        whether an existing pointer still names a record that holds it. The pointer expires
        at ``until`` (Unix seconds), or after a short claim period when that is not known yet.
        """
        expiry = {"px": _CLAIM_MS} if until is None else {"pxat": ms(until)}
        mode, when = ("PX", _CLAIM_MS) if until is None else ("PXAT", ms(until))
        for _ in range(3):  # the pointer may vanish (TTL) between our reads: look again
            async with self._redis() as client:
                if await client.set(name, value, nx=True, **expiry):
                    return True
                old = await client.get(name)
            if old == value:
                return False
            if old is None:
                continue
            if await live(old):
                break
            # A stale pointer (its record is gone or moved on): take it over, unless it changed.
            if await self._run("SWAP_POINTER", [name], [old, value, mode, when]):
                return True
        raise Conflict("a session with this key or handle exists")

    async def _key_is_live(self, key: str, old: bytes) -> bool:
        user_id, handle = from_pointer(old)
        async with self._redis() as client:
            current = await client.hget(self.layout.session(user_id, handle), "key")
        return bool(current == enc(key))

    async def _handle_is_live(self, handle: str, old: bytes) -> bool:
        async with self._redis() as client:
            return bool(await client.exists(self.layout.session(dec(old), handle)))

    async def _drop(self, name: bytes, value: bytes) -> None:
        await self._run("DROP_POINTER", [name], [value])

    async def _forget(self, record: SessionRecord) -> None:
        """Remove the pointers and the expiry-index entry of a deleted record."""
        k = self.layout
        ref = pointer(record.user_id, record.handle)
        await self._drop(k.key_pointer(record.key), ref)
        await self._drop(k.handle_pointer(record.handle), enc(record.user_id))
        async with self._redis() as client:
            await client.zrem(k.expiring(record.handle), ref)

    async def _expire(self, *names: bytes, at: float) -> None:
        async with self._redis() as client:
            pipe = client.pipeline(transaction=False)
            for name in names:
                pipe.pexpireat(name, ms(at))
            await pipe.execute()
