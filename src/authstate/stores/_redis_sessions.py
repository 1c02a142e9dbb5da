"""Sessions and refresh families in Redis (a part of ``RedisStore``).

All of a user's records are one packed string in the user's slot, found by key or handle
through bucket entries (``_redis_pointers``); each write is one single-slot script
(``_redis_scripts``). Records have no Redis TTL: ``purge_expired`` deletes the dead ones,
found through the purge index (``P{d<n>}:due``: each user scored by its earliest death).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from authstate.errors import Conflict
from authstate.stores._redis_layout import (
    dbl,
    enc,
    key_bytes,
    many_records,
    ms,
    num,
    one_record,
    pack,
    record_fields,
    records_from,
)
from authstate.stores._redis_pointers import RedisPointers
from authstate.stores.base import SessionRecord

_PURGE_BATCH = 500


def _dies(record: SessionRecord) -> float:
    """When the record dies: its score in the purge index (``dies_at`` in the scripts)."""
    return min(record.expires_at, record.idle_expires_at())


class RedisSessions(RedisPointers):
    """``SessionStore`` for ``RedisStore``; ``cluster`` is set by the store."""

    cluster: bool

    async def create_session(self, record: SessionRecord) -> None:
        k = self.layout
        tag, key, handle = k.tag(record.user_id), key_bytes(record.key), key_bytes(record.handle)
        key_bucket, handle_bucket = k.key_bucket(key), k.handle_bucket(handle)
        # Both entries are claimed first: they are what makes the key and the handle unique
        # (and a claim a crash leaves behind is stale: its record does not exist).
        claimed: list[tuple[bytes, bytes]] = []
        try:
            if await self._claim(key_bucket, key, tag, lambda old: self._key_is_taken(key, old)):
                claimed.append((key_bucket, key))
            if await self._claim(
                handle_bucket, handle, tag, lambda old: self._handle_is_live(handle, old)
            ):
                claimed.append((handle_bucket, handle))
            created = await self._run(
                "CREATE_SESSION",
                [k.records_of(tag)],
                [enc(record.user_id), *record_fields(record)],
            )
            if not created:
                raise Conflict("a session with this handle exists")
        except Conflict:
            for bucket, field in claimed:
                await self._drop(bucket, field, tag)
            raise
        async with self._redis() as client:
            await client.zadd(k.due(tag), {tag: _dies(record)}, lt=True)

    async def import_sessions(self, records: Sequence[SessionRecord]) -> None:
        """Write many records at once, a few scripts per call: for migration and for
        benchmarks that fill a store. Every user of ``records`` must have no records yet and
        every key and handle must be new (``Conflict`` otherwise, after the batch: what was
        written stays). Not a ``SessionStore`` method: a login goes through
        ``create_session``."""
        k = self.layout
        users: dict[str, list[SessionRecord]] = {}
        for record in records:
            users.setdefault(record.user_id, []).append(record)
        ops: list[tuple[bytes, bytes, list[bytes]]] = []  # (op, key, values)
        for user_id, own in users.items():
            tag = k.tag(user_id)
            fields = [enc(user_id)]
            for number, record in enumerate(own, 1):
                values = record_fields(record)
                values[16] = b"%d" % number
                fields += values
                key, handle = values[1], values[0]
                ops.append((b"h", k.key_bucket(key), [key, tag]))
                ops.append((b"h", k.handle_bucket(handle), [handle, tag]))
            ops.append((b"s", k.records_of(tag), [pack(fields)]))
            ops.append((b"z", k.due(tag), [num(min(_dies(r) for r in own)), tag]))
        taken = 0
        for group in await self._by_node(ops):
            names: dict[bytes, bytes] = {}
            args: list[bytes] = []
            for op, name, values in group:
                index = names.setdefault(name, b"%d" % (len(names) + 1))
                args += [op, index, *values]
            head = [b"%d" % len(names), *names]
            taken += int(await self._run_on("IMPORT", [], head + args, group[0][1]))
        if taken:
            raise Conflict(f"import_sessions: {taken} users, keys or handles exist")

    async def _by_node(
        self, ops: list[tuple[bytes, bytes, list[bytes]]]
    ) -> list[list[tuple[bytes, bytes, list[bytes]]]]:
        """``ops`` grouped by the server that holds their keys (one group on a standalone
        Redis)."""
        if not self.cluster or not ops:
            return [ops] if ops else []
        groups: dict[str, list[tuple[bytes, bytes, list[bytes]]]] = {}
        for op in ops:
            groups.setdefault(self._node_of(op[1]).name, []).append(op)
        return list(groups.values())

    async def _key_is_taken(self, key: bytes, tag: bytes, *, unless: bytes | None = None) -> bool:
        owner = await self._key_owner(key, tag)
        return owner is not None and owner != unless

    async def _find(self, key: str, *, any_key: bool = False) -> SessionRecord | None:
        """The record whose current key is ``key``, or with ``any_key`` also the refresh
        family that consumed ``key``."""
        k, stored = self.layout, key_bytes(key)
        if not self.cluster:
            # One trip: the script follows the bucket entry on the server.
            consumed = k.consumed(stored) if any_key else b""
            raw = await self._run(
                "GET_BY_KEY", [k.key_bucket(stored)], [stored, *k.records_parts(), consumed]
            )
            return one_record(raw)
        # A script stays in one slot, and the records are not in the bucket's: two trips.
        tag = await self._tag_of_key(stored)
        if tag is not None:
            raw = await self._run("GET_SESSION", [k.records_of(tag)], [b"2", stored])
            if raw:
                return one_record(raw)
        if not any_key:
            return None
        async with self._redis() as client:
            ref = await client.get(k.consumed(stored))
        if ref is None:
            return None
        tag, _, handle = bytes(ref).partition(b"\0")
        return one_record(await self._run("GET_SESSION", [k.records_of(tag)], [b"1", handle]))

    async def get_session(self, key: str) -> SessionRecord | None:
        return await self._find(key)

    async def touch_session(self, key: str, last_seen_at: float) -> bool:
        k, stored = self.layout, key_bytes(key)
        args = [stored, dbl(last_seen_at)]
        if not self.cluster:
            raw = await self._run(
                "TOUCH_BY_KEY", [k.key_bucket(stored)], [*args, *k.records_parts()]
            )
            return bool(raw)
        tag = await self._tag_of_key(stored)  # two trips, as in _find
        if tag is None:
            return False
        return bool(await self._run("TOUCH_SESSION", [k.records_of(tag)], args))

    async def replace_session_key(
        self, old_key: str, new_key: str, *, roles: tuple[str, ...] | None = None
    ) -> SessionRecord | None:
        k, old, new = self.layout, key_bytes(old_key), key_bytes(new_key)
        tag = await self._tag_of_key(old)
        if tag is None:
            return None
        bucket = k.key_bucket(new)
        mine = await self._claim(bucket, new, tag, lambda entry: self._key_is_taken(new, entry))
        raw = await self._run(
            "REPLACE_KEY",
            [k.records_of(tag)],
            [
                old,
                new,
                b"0" if roles is None else b"1",
                json.dumps(list(roles or ()), separators=(",", ":")).encode(),
            ],
        )
        if raw is None:
            if mine:
                await self._drop(bucket, new, tag)
            return None
        await self._drop(k.key_bucket(old), old, tag)
        return one_record(raw)

    async def _delete(self, tag: bytes, by: bytes, value: bytes) -> SessionRecord | None:
        raw = await self._run("DELETE_SESSION", [self.layout.records_of(tag)], [by, value])
        record = one_record(raw)
        if record is not None:
            await self._forget_record(tag, record)
        return record

    async def _forget_record(self, tag: bytes, record: SessionRecord) -> None:
        previous = record.previous_key
        await self._forget(
            tag,
            key_bytes(record.key),
            b"" if previous is None else b"=" + key_bytes(previous),
            key_bytes(record.handle),
        )

    async def delete_session(self, key: str) -> SessionRecord | None:
        stored = key_bytes(key)
        tag = await self._tag_of_key(stored)
        return None if tag is None else await self._delete(tag, b"2", stored)

    async def delete_session_by_handle(
        self, handle: str, *, user_id: str | None = None
    ) -> SessionRecord | None:
        raw = key_bytes(handle)
        tag = self.layout.tag(user_id) if user_id is not None else await self._tag_of_handle(raw)
        return None if tag is None else await self._delete(tag, b"1", raw)

    async def list_sessions(self, user_id: str, *, kind: str | None = None) -> list[SessionRecord]:
        async with self._redis() as client:
            blob = await client.get(self.layout.records(user_id))
        found = records_from(blob)
        found.sort(key=lambda item: (item[0].created_at, item[1]), reverse=True)
        return [
            record
            for record, _ in found
            if record.user_id == user_id and (kind is None or record.kind == kind)
        ]

    async def delete_user_sessions(
        self, user_id: str, *, except_handle: str | None = None
    ) -> list[SessionRecord]:
        tag = self.layout.tag(user_id)
        raw = await self._run(
            "DELETE_USER_SESSIONS",
            [self.layout.records_of(tag)],
            [b"0" if except_handle is None else b"1", key_bytes(except_handle or "")],
        )
        deleted = many_records(raw)
        for record in deleted:
            await self._forget_record(tag, record)
        return deleted

    async def find_refresh(self, key: str) -> SessionRecord | None:
        # A consumed key (``swap_refresh_key`` moves it to ``P:c:<key>``) finds the family
        # that consumed it until the family's absolute expiry.
        return await self._find(key, any_key=True)

    async def swap_refresh_key(
        self, family: SessionRecord, successor_key: str, *, now: float
    ) -> SessionRecord | None:
        k = self.layout
        tag, old, new = k.tag(family.user_id), key_bytes(family.key), key_bytes(successor_key)
        bucket = k.key_bucket(new)
        # Claimed before the swap, so the successor resolves the moment it exists (a
        # parallel GRACE answer hands it out at once).
        handle = key_bytes(family.handle)
        # Taken only by another record: the family itself has it when a parallel rotation
        # to the same successor won.
        mine = await self._claim(
            bucket, new, tag, lambda entry: self._key_is_taken(new, entry, unless=handle)
        )
        # The consumed pointer too: once the swap is done, the old key must find the family.
        # Written when the swap loses it is still true (the key was consumed already, or the
        # family is gone and it finds nothing).
        async with self._redis() as client:
            await client.set(k.consumed(old), tag + b"\0" + handle, pxat=ms(family.expires_at))
        swapped, raw = await self._run(
            "SWAP_REFRESH_KEY", [k.records_of(tag)], [handle, old, new, dbl(now)]
        )
        if swapped:
            await self._drop(k.key_bucket(old), old, tag)
            return one_record(raw)
        # Lost: keep the claim only if the winner moved the family to the same successor.
        if mine and raw != new:
            await self._drop(bucket, new, tag)
        return None

    async def _purge_sessions(self, shard: bytes, now: float) -> int:
        count = 0
        while True:
            async with self._redis() as client:
                due = await client.zrangebyscore(
                    shard, "-inf", now, 0, _PURGE_BATCH, withscores=True
                )
            for tag, score in due:
                soonest, *dead = await self._run(
                    "PURGE_USER", [self.layout.records_of(tag)], [dbl(now)]
                )
                # Re-index the user at its next death, unless a login lowered it meanwhile.
                await self._run("MOVE_DUE", [shard], [tag, num(score), soonest])
                if not soonest:
                    await self._index_again(shard, tag)
                for at in range(0, len(dead), 3):
                    await self._forget(tag, *dead[at : at + 3])
                    count += 1
            if len(due) < _PURGE_BATCH:
                return count

    async def _index_again(self, shard: bytes, tag: bytes) -> None:
        """Index the records the user has now, after the purge took the user out of
        ``shard``: a login between PURGE_USER and MOVE_DUE wrote a record the first did not
        see, and its ``ZADD LT`` left the old score in place for the second to remove."""
        async with self._redis() as client:
            found = records_from(await client.get(self.layout.records_of(tag)))
            if found:
                dies = min(_dies(record) for record, _ in found)
                await client.zadd(shard, {tag: dies}, lt=True)
