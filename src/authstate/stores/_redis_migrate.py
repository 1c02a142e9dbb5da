"""Session layout 1 of the Redis store (authstate 0.1.x before issue 17): detection and migration.

Layout 1 kept each session as a hash ``P{u:<user>}:s:<handle>`` with pointers ``P:k:<key>``
and ``P:h:<handle>``, an index ``P{u:<user>}:i`` (and counter ``:n``) and an entry in one of
16 expiry shards ``P{e<n>}:exp`` (member ``[user, handle]`` as JSON). Every live session is
in an expiry shard, which is how a store of layout 2 recognises leftovers of layout 1 and
how the migration finds them.

``migrate(store)`` converts every session and refresh family listed in the shards into
layout 2 (``import_sessions``), keeps each family's last consumed key (reuse detection) and
deletes the old keys. Consumed keys older than a family's previous one stay as layout-1
pointers until their TTL; presenting one after the migration finds nothing (a failed
refresh) instead of revoking the family. Nodes of the older version must be stopped first:
they would go on writing layout 1.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from authstate.errors import Conflict
from authstate.stores._redis_layout import as_mapping, dec, enc, key_bytes, ms
from authstate.stores.base import SessionRecord

if TYPE_CHECKING:
    from authstate.stores._redis_sessions import RedisSessions

log = logging.getLogger("authstate")
_BATCH = 1000


def _record_name(store: RedisSessions, user_id: str, handle: str) -> bytes:
    return store.layout.records(user_id)[:-1] + b"s:" + enc(handle)


async def has_layout_1(store: RedisSessions) -> bool:
    async with store._redis() as client:
        for shard in store.layout.old_expiry_shards:
            if await client.exists(shard):
                return True
    return False


async def migrate(store: RedisSessions) -> int:
    """Convert every layout-1 session under the store's prefix; returns how many."""
    k, moved = store.layout, 0
    for shard in k.old_expiry_shards:
        while True:
            async with store._redis() as client:
                members = await client.zrange(shard, 0, _BATCH - 1)
            if not members:
                break
            users: dict[str, list[str]] = {}
            for member in members:
                user_id, handle = json.loads(member)
                users.setdefault(str(user_id), []).append(str(handle))
            for user_id, handles in users.items():
                moved += await _migrate_user(store, user_id, handles)
            async with store._redis() as client:
                await client.zrem(shard, *members)
        async with store._redis() as client:
            await client.delete(shard)
    log.info("Redis store: %d sessions moved from layout 1 to layout 2", moved)
    return moved


async def _migrate_user(store: RedisSessions, user_id: str, handles: list[str]) -> int:
    k = store.layout
    async with store._redis() as client:
        records = []
        for handle in handles:
            raw = await client.hgetall(_record_name(store, user_id, handle))
            if raw:
                records.append(session_record(raw))
    # Whatever is already in layout 2 for these users (a migration interrupted and run
    # again) wins: it may have changed since.
    known = {record.handle for record in await store.list_sessions(user_id)}
    fresh = [record for record in records if record.handle not in known]
    if fresh and not known:
        try:
            await store.import_sessions(fresh)
            fresh = []
        except Conflict:
            # Partly written (on a cluster, a run interrupted between two masters): what
            # the import wrote stays; the records it could not write, one at a time below.
            known = {record.handle for record in await store.list_sessions(user_id)}
            fresh = [record for record in fresh if record.handle not in known]
    for record in fresh:
        try:
            await store.create_session(record)
        except Conflict:
            log.warning("Redis store: a session of %r not migrated (conflict)", user_id)
    tag = k.tag(user_id)
    async with store._redis() as client:
        for record in records:
            if record.previous_key is not None:
                await client.set(
                    k.consumed(key_bytes(record.previous_key)),
                    tag + b"\0" + key_bytes(record.handle),
                    pxat=ms(record.expires_at),
                )
            old = [k.prefix + b"k:" + enc(record.key), k.prefix + b"h:" + enc(record.handle)]
            if record.previous_key is not None:
                old.append(k.prefix + b"k:" + enc(record.previous_key))
            # The record last: a run interrupted before it finds the record again and
            # deletes what is left.
            old.append(_record_name(store, user_id, record.handle))
            for name in old:  # one at a time: on a cluster each is in its own slot
                await client.delete(name)
        prefix = k.records(user_id)[:-1]
        for name in (prefix + b"i", prefix + b"n"):
            await client.delete(name)
    return len(records)


def session_record(raw: Mapping[bytes, bytes] | list[bytes]) -> SessionRecord:
    """A layout-1 record hash as a record."""
    f = as_mapping(raw)
    previous = f.get(b"previous_key")
    rotated = f.get(b"rotated_at")
    return SessionRecord(
        key=dec(f[b"key"]),
        handle=dec(f[b"handle"]),
        user_id=dec(f[b"user_id"]),
        kind=dec(f[b"kind"]),
        created_at=float(f[b"created_at"]),
        last_seen_at=float(f[b"last_seen_at"]),
        expires_at=float(f[b"expires_at"]),
        idle_timeout=float(f[b"idle_timeout"]),
        roles=tuple(json.loads(f[b"roles"])),
        user_agent=dec(f[b"user_agent"]),
        ip=dec(f[b"ip"]),
        data=json.loads(f[b"data"]),
        previous_key=None if previous is None else dec(previous),
        rotated_at=None if rotated is None else float(rotated),
        generation=int(f[b"generation"]),
        # Absent in records written before live roles existed.
        claims=json.loads(f.get(b"claims", b"{}")),
        roles_version=int(f.get(b"roles_version", b"0")),
        # Absent in records written before step-up and remember-me existed.
        auth_time=float(f.get(b"auth_time", b"0")),
        remember=f.get(b"remember", b"1") != b"0",
    )
