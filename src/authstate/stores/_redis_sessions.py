"""Sessions and refresh families in Redis (a part of ``RedisStore``).

A record is a hash in its user's slot, found by key or handle through pointers
(``_redis_pointers``); each write is one single-slot script (``_redis_scripts``). Records
carry real TTLs: ``PEXPIREAT`` at the moment they die, pushed forward by ``touch_session``
and by a rotation up to the absolute expiry.
"""

from __future__ import annotations

import json

from authstate.errors import Conflict
from authstate.stores._redis_layout import (
    dec,
    enc,
    from_pointer,
    ms,
    num,
    pointer,
    session_fields,
    session_record,
)
from authstate.stores._redis_pointers import RedisPointers
from authstate.stores.base import SessionRecord

_PURGE_BATCH = 500


class RedisSessions(RedisPointers):
    """``SessionStore`` for ``RedisStore``; ``cluster`` is set by the store."""

    cluster: bool

    async def create_session(self, record: SessionRecord) -> None:
        k = self.layout
        ref, owner = pointer(record.user_id, record.handle), enc(record.user_id)
        key_pointer, handle_pointer = k.key_pointer(record.key), k.handle_pointer(record.handle)
        dies = min(record.expires_at, record.idle_expires_at())
        # Both pointers are claimed first, for as long as the session may live: they are what
        # makes the key and the handle unique (and a claim a crash leaves behind is stale).
        claimed: list[tuple[bytes, bytes]] = []
        try:
            if await self._claim(
                key_pointer,
                ref,
                lambda old: self._key_is_live(record.key, old),
                until=record.expires_at,
            ):
                claimed.append((key_pointer, ref))
            if await self._claim(
                handle_pointer,
                owner,
                lambda old: self._handle_is_live(record.handle, old),
                until=record.expires_at,
            ):
                claimed.append((handle_pointer, owner))
            created = await self._run(
                "CREATE_SESSION",
                [
                    k.session(record.user_id, record.handle),
                    k.index(record.user_id),
                    k.counter(record.user_id),
                ],
                [
                    enc(record.handle),
                    num(record.created_at),
                    ms(dies),
                    ms(record.expires_at),
                    *session_fields(record),
                ],
            )
            if not created:
                raise Conflict("a session with this handle exists")
        except Conflict:
            for name, value in claimed:
                await self._drop(name, value)
            raise
        async with self._redis() as client:
            await client.zadd(k.expiring(record.handle), {ref: dies})

    async def _read(self, user_id: str, handle: str) -> SessionRecord | None:
        async with self._redis() as client:
            raw = await client.hgetall(self.layout.session(user_id, handle))
        return session_record(raw) if raw else None

    async def _find(
        self, key: str, *, any_key: bool = False
    ) -> SessionRecord | tuple[str, str] | None:
        """The record ``key`` points at (only if it has ``key`` now, unless ``any_key``), or
        the pointer when the record is still to be read."""
        if self.cluster:
            # A script stays in one slot, and the record is not in its pointer's: two trips.
            return await self._follow(key)
        # One trip: the script follows the pointer on the server. It hands the pointer back
        # when it cannot spell the record's name (a user id tagged by digest).
        raw = await self._run(
            "GET_BY_KEY",
            [self.layout.key_pointer(key)],
            [enc(key), *self.layout.session_parts(), b"1" if any_key else b"0"],
        )
        if isinstance(raw, bytes):
            return from_pointer(raw)
        return session_record(raw) if raw else None

    async def get_session(self, key: str) -> SessionRecord | None:
        found = await self._find(key)
        record = await self._read(*found) if isinstance(found, tuple) else found
        # The pointer is a hint; only the record says which key is current.
        return record if record is not None and record.key == key else None

    async def _owner(self, handle: str) -> str | None:
        async with self._redis() as client:
            raw = await client.get(self.layout.handle_pointer(handle))
        return None if raw is None else dec(raw)

    async def touch_session(self, key: str, last_seen_at: float) -> bool:
        args = [enc(key), num(last_seen_at)]
        if self.cluster:
            ref = await self._follow(key)  # two trips, as in _find
        else:
            pointer_name, parts = self.layout.key_pointer(key), self.layout.session_parts()
            raw = await self._run("TOUCH_BY_KEY", [pointer_name], [*args, *parts])
            if not isinstance(raw, bytes):
                return bool(raw)
            ref = from_pointer(raw)
        if ref is None:
            return False
        return bool(await self._run("TOUCH_SESSION", [self.layout.session(*ref)], args))

    async def replace_session_key(
        self, old_key: str, new_key: str, *, roles: tuple[str, ...] | None = None
    ) -> SessionRecord | None:
        ref = await self._follow(old_key)
        if ref is None:
            return None
        value = pointer(*ref)
        new_pointer = self.layout.key_pointer(new_key)
        mine = await self._claim(new_pointer, value, lambda old: self._key_is_live(new_key, old))
        raw = await self._run(
            "REPLACE_KEY",
            [self.layout.session(*ref)],
            [
                enc(old_key),
                enc(new_key),
                b"0" if roles is None else b"1",
                json.dumps(list(roles or ())).encode(),
            ],
        )
        if raw is None:
            if mine:
                await self._drop(new_pointer, value)
            return None
        record = session_record(raw)
        await self._expire(new_pointer, at=record.expires_at)
        await self._drop(self.layout.key_pointer(old_key), value)
        return record

    async def _delete(self, user_id: str, handle: str, key: str | None) -> SessionRecord | None:
        raw = await self._run(
            "DELETE_SESSION",
            [self.layout.session(user_id, handle), self.layout.index(user_id)],
            [enc(handle), b"0" if key is None else b"1", enc(key or "")],
        )
        if raw is None:
            return None
        record = session_record(raw)
        await self._forget(record)
        return record

    async def delete_session(self, key: str) -> SessionRecord | None:
        ref = await self._follow(key)
        return None if ref is None else await self._delete(*ref, key)

    async def delete_session_by_handle(
        self, handle: str, *, user_id: str | None = None
    ) -> SessionRecord | None:
        owner = await self._owner(handle)
        if owner is None or (user_id is not None and owner != user_id):
            return None
        return await self._delete(owner, handle, None)

    async def _handles(self, user_id: str) -> list[str]:
        async with self._redis() as client:
            return [dec(raw) for raw in await client.zrange(self.layout.index(user_id), 0, -1)]

    async def list_sessions(self, user_id: str, *, kind: str | None = None) -> list[SessionRecord]:
        handles = await self._handles(user_id)
        async with self._redis() as client:
            pipe = client.pipeline(transaction=False)
            for handle in handles:
                pipe.hgetall(self.layout.session(user_id, handle))
            rows = await pipe.execute() if handles else []
            dangling = [enc(h) for h, raw in zip(handles, rows, strict=True) if not raw]
            if dangling:
                # Members whose record expired by TTL: cleaned when someone looks.
                await client.zrem(self.layout.index(user_id), *dangling)
        found = [(session_record(raw), int(raw.get(b"ins", 0))) for raw in rows if raw]
        found.sort(key=lambda item: (item[0].created_at, item[1]), reverse=True)
        return [
            record
            for record, _ in found
            if record.user_id == user_id and (kind is None or record.kind == kind)
        ]

    async def delete_user_sessions(
        self, user_id: str, *, except_handle: str | None = None
    ) -> list[SessionRecord]:
        handles = await self._handles(user_id)
        if not handles:
            return []
        k = self.layout
        raws = await self._run(
            "DELETE_USER_SESSIONS",
            [k.index(user_id), *(k.session(user_id, h) for h in handles)],
            [
                b"0" if except_handle is None else b"1",
                enc(except_handle or ""),
                *(enc(h) for h in handles),
            ],
        )
        deleted = [session_record(raw) for raw in raws]
        for record in deleted:
            await self._forget(record)
        return deleted

    async def find_refresh(self, key: str) -> SessionRecord | None:
        # A key pointer outlives the key's rotation: the family it names either has the key
        # now or consumed it (``swap_refresh_key`` keeps the pointer).
        found = await self._find(key, any_key=True)
        return await self._read(*found) if isinstance(found, tuple) else found

    async def swap_refresh_key(
        self, family: SessionRecord, successor_key: str, *, now: float
    ) -> SessionRecord | None:
        value = pointer(family.user_id, family.handle)
        successor = self.layout.key_pointer(successor_key)
        # Claimed before the swap, so the successor resolves the moment it exists (a
        # parallel GRACE answer hands it out at once).
        mine = await self._claim(
            successor, value, lambda old: self._key_is_live(successor_key, old)
        )
        swapped, raw = await self._run(
            "SWAP_REFRESH_KEY",
            [self.layout.session(family.user_id, family.handle)],
            [enc(family.key), enc(successor_key), num(now)],
        )
        if swapped:
            record = session_record(raw)
            await self._expire(successor, at=record.expires_at)
            return record
        # Lost: keep the claim only if the winner moved the family to the same successor.
        if mine and raw != enc(successor_key):
            await self._drop(successor, value)
        return None

    async def _purge_sessions(self, shard: bytes, now: float) -> int:
        k, count = self.layout, 0
        while True:
            async with self._redis() as client:
                due = await client.zrangebyscore(shard, "-inf", now, 0, _PURGE_BATCH)
            for member in due:
                user_id, handle = from_pointer(member)
                status, *rest = await self._run(
                    "PURGE_SESSION",
                    [k.session(user_id, handle), k.index(user_id)],
                    [num(now), enc(handle)],
                )
                async with self._redis() as client:
                    if status == b"alive":  # touched since it was indexed: look again later
                        await client.zadd(shard, {member: float(rest[0])})
                        continue
                    await client.zrem(shard, member)
                if status == b"dead":
                    count += 1
                    await self._drop(k.key_pointer(dec(rest[0])), member)
                    await self._drop(k.handle_pointer(handle), enc(user_id))
            if len(due) < _PURGE_BATCH:
                return count
