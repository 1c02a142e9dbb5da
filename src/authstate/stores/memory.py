"""The in-process store: plain dicts, for development and tests only.

Everything is lost when the process exits and nothing is shared between processes, so a
deployment with more than one worker must not use it. It implements every store protocol
with the same observable behaviour as the durable backends (the contract suites in
``tests/stores/`` hold it to that), including JSON round-tripping of
``SessionRecord.data``.

No method awaits between reading and writing its dicts, so under asyncio every method is
atomic without a lock: the event loop cannot switch tasks inside one.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import Any

from authstate._time import Clock, SystemClock
from authstate.errors import Conflict, StoreUnavailable
from authstate.stores._bus import new_epoch
from authstate.stores.base import (
    Change,
    ChangeKind,
    ChangeListener,
    LogRead,
    Reconciler,
    SessionRecord,
    StoredKey,
    UserGrants,
    UserRecord,
)
from authstate.stores.session_data import check_update, merge

log = logging.getLogger("authstate")

REVOCATION_KINDS = frozenset({ChangeKind.JTI, ChangeKind.SID, ChangeKind.USER, ChangeKind.ROLES})


def _json_copy(record: SessionRecord) -> SessionRecord:
    # Same data semantics as a durable store (tuples become lists, keys become strings) and
    # no aliasing: a caller mutating a returned dict cannot change the stored session.
    return replace(
        record,
        data=_json_round_trip(record.data),
        roles=tuple(record.roles),
        claims=_json_round_trip(record.claims),
    )


def _json_round_trip(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON object's copy: what a durable store would hand back (no aliasing)."""
    if not mapping:  # most sessions carry no data and no custom claims
        return {}
    copied: dict[str, Any] = json.loads(json.dumps(dict(mapping)))
    return copied


class MemoryStore:
    """A ``Store`` held in this process's memory. Development and tests only."""

    url_scheme = "memory"

    def __init__(self, url: str = "memory://", *, clock: Clock | None = None) -> None:
        self.url = url
        self._clock: Clock = clock or SystemClock()
        self._open = False
        self._sessions: dict[str, SessionRecord] = {}  # by handle, in insertion order
        self._handle_by_key: dict[str, str] = {}
        self._consumed: dict[str, tuple[str, float]] = {}  # refresh key -> (handle, expires_at)
        self._changes: list[Change] = []
        self._seq = itertools.count(1)
        self._last_seq = 0
        self._epoch = new_epoch()
        self._listeners: list[ChangeListener] = []
        self._generations: dict[str, int] = {}
        self._grants: dict[str, UserGrants] = {}
        self._keys: dict[str, StoredKey] = {}
        self._users: dict[str, UserRecord] = {}
        self._failures: dict[str, list[tuple[float, float]]] = {}  # bucket -> [(at, forget_at)]

    # -- lifecycle ----------------------------------------------------------------------------
    async def open(self) -> None:
        self._open = True

    async def close(self) -> None:
        # The data lives in this object and survives a close/open cycle; only delivery stops.
        self._open = False
        self._listeners.clear()

    async def ping(self) -> None:
        if not self._open:
            raise StoreUnavailable(reason="memory store is closed")

    # -- sessions and refresh families ---------------------------------------------------------
    async def create_session(self, record: SessionRecord) -> None:
        if record.key in self._handle_by_key or record.handle in self._sessions:
            raise Conflict("a session with this key or handle exists")
        self._put(_json_copy(record))

    async def get_session(self, key: str) -> SessionRecord | None:
        handle = self._handle_by_key.get(key)
        return None if handle is None else _json_copy(self._sessions[handle])

    async def touch_session(self, key: str, last_seen_at: float) -> bool:
        handle = self._handle_by_key.get(key)
        if handle is None:
            return False
        record = self._sessions[handle]
        # Never backwards: nodes write last_seen throttled and possibly out of order.
        self._sessions[handle] = replace(
            record, last_seen_at=max(record.last_seen_at, last_seen_at)
        )
        return True

    async def replace_session_key(
        self, old_key: str, new_key: str, *, roles: tuple[str, ...] | None = None
    ) -> SessionRecord | None:
        handle = self._handle_by_key.get(old_key)
        if handle is None:
            return None
        if new_key in self._handle_by_key:
            raise Conflict("a session with this key exists")
        record = self._sessions[handle]
        updated = replace(record, key=new_key, roles=record.roles if roles is None else roles)
        del self._handle_by_key[old_key]
        self._put(updated)
        return _json_copy(updated)

    async def delete_session(self, key: str) -> SessionRecord | None:
        handle = self._handle_by_key.get(key)
        return None if handle is None else self._remove(handle)

    async def delete_session_by_handle(
        self, handle: str, *, user_id: str | None = None
    ) -> SessionRecord | None:
        record = self._sessions.get(handle)
        if record is None or (user_id is not None and record.user_id != user_id):
            return None
        return self._remove(handle)

    async def list_sessions(self, user_id: str, *, kind: str | None = None) -> list[SessionRecord]:
        # reversed + stable sort: among equal created_at, the later insertion comes first.
        mine = [
            r
            for r in reversed(self._sessions.values())
            if r.user_id == user_id and (kind is None or r.kind == kind)
        ]
        return [_json_copy(r) for r in sorted(mine, key=lambda r: r.created_at, reverse=True)]

    async def delete_user_sessions(
        self, user_id: str, *, except_handle: str | None = None
    ) -> list[SessionRecord]:
        doomed = [
            h for h, r in self._sessions.items() if r.user_id == user_id and h != except_handle
        ]
        return [self._remove(h) for h in doomed]

    async def find_refresh(self, key: str) -> SessionRecord | None:
        handle = self._handle_by_key.get(key)
        if handle is None:
            consumed = self._consumed.get(key)
            handle = None if consumed is None else consumed[0]
        record = None if handle is None else self._sessions.get(handle)
        return None if record is None else _json_copy(record)

    async def swap_refresh_key(
        self, family: SessionRecord, successor_key: str, *, now: float
    ) -> SessionRecord | None:
        current = self._sessions.get(family.handle)
        if current is None or current.key != family.key:
            return None
        if successor_key in self._handle_by_key:
            raise Conflict("the successor key is in use")
        rotated = replace(
            current, key=successor_key, previous_key=current.key, rotated_at=now, last_seen_at=now
        )
        del self._handle_by_key[current.key]
        self._put(rotated)
        self._consumed[current.key] = (current.handle, current.expires_at)
        return _json_copy(rotated)

    # -- session data (one atomic step each: no await inside) ----------------------------------
    async def get_session_data(self, handle: str) -> dict[str, Any] | None:
        record = self._sessions.get(handle)
        return None if record is None else _json_round_trip(record.data)

    async def update_session_data(
        self,
        handle: str,
        changes: Mapping[str, Any],
        *,
        remove: Collection[str] = (),
        max_bytes: int,
    ) -> dict[str, Any] | None:
        check_update(changes, remove)
        record = self._sessions.get(handle)
        if record is None:
            return None
        merged, _ = merge(record.data, changes, remove, max_bytes)
        self._sessions[handle] = replace(record, data=merged)
        return _json_round_trip(self._sessions[handle].data)

    async def purge_expired(self, now: float) -> int:
        count = 0
        for handle in [h for h, r in self._sessions.items() if not r.is_live(now)]:
            self._remove(handle)
            count += 1
        for key in [k for k, (_, expires) in self._consumed.items() if expires <= now]:
            del self._consumed[key]
            count += 1
        kept = [c for c in self._changes if c.until >= now]
        count += len(self._changes) - len(kept)
        self._changes = kept
        for bucket, entries in list(self._failures.items()):
            live = [e for e in entries if e[1] > now]
            count += len(entries) - len(live)
            if live:
                self._failures[bucket] = live
            else:
                del self._failures[bucket]
        return count

    def _put(self, record: SessionRecord) -> None:
        self._sessions[record.handle] = record
        self._handle_by_key[record.key] = record.handle

    def _remove(self, handle: str) -> SessionRecord:
        record = self._sessions.pop(handle)
        del self._handle_by_key[record.key]
        # A deleted family's consumed keys can no longer identify anything worth revoking.
        for key in [k for k, (h, _) in self._consumed.items() if h == handle]:
            del self._consumed[key]
        return _json_copy(record)

    # -- revocation state and the change log (the bus) -----------------------------------------
    async def publish(self, change: Change) -> Change:
        stored = replace(change, seq=next(self._seq))
        self._changes.append(stored)
        self._last_seq = stored.seq
        for listener in list(self._listeners):
            try:
                listener(stored)
            except Exception:
                # One broken listener must not stop delivery to the others or fail the writer.
                log.exception("change listener failed")
        return stored

    async def changes_since(self, seq: int) -> list[Change]:
        return [c for c in self._changes if c.seq > seq]

    async def active_revocations(self, now: float) -> tuple[list[Change], int]:
        active = [c for c in self._changes if c.kind in REVOCATION_KINDS and c.until >= now]
        return active, self._last_seq

    async def read_log(self, seq: int) -> LogRead:
        return LogRead(self._epoch, self._last_seq, await self.changes_since(seq))

    async def listen(
        self, listener: ChangeListener, *, reconcile: Reconciler | None = None
    ) -> None:
        # In-process delivery on publish: nothing is ever missed, and the log cannot go back
        # while the listeners live (it dies with the process), so ``reconcile`` never runs.
        self._listeners.append(listener)

    def bus_healthy_since(self) -> float | None:
        # In-process delivery cannot lag or disconnect.
        return self._clock.monotonic()

    def bus_lag(self) -> float | None:
        return 0.0  # delivered in the publishing call

    def describe_bus(self) -> str:
        return "in-process (one node)"

    async def bump_user_generation(self, user_id: str) -> int:
        generation = self._generations.get(user_id, 0) + 1
        self._generations[user_id] = generation
        return generation

    async def get_user_generation(self, user_id: str) -> int:
        return self._generations.get(user_id, 0)

    # -- keys ---------------------------------------------------------------------------------
    async def save_key(self, key: StoredKey) -> None:
        if key.kid in self._keys:
            raise Conflict(f"a key with kid {key.kid!r} exists")
        self._keys[key.kid] = key

    async def load_keys(self) -> list[StoredKey]:
        return sorted(self._keys.values(), key=lambda k: k.created_at)

    async def retire_key(self, kid: str, retire_after: float) -> None:
        key = self._keys.get(kid)
        if key is not None:
            self._keys[kid] = replace(key, retire_after=retire_after)

    async def delete_key(self, kid: str) -> None:
        self._keys.pop(kid, None)

    # -- users --------------------------------------------------------------------------------
    async def create_user(self, user: UserRecord) -> None:
        if user.id in self._users or any(u.username == user.username for u in self._users.values()):
            raise Conflict("a user with this id or username exists")
        self._users[user.id] = replace(user, roles=tuple(user.roles))

    async def get_user(self, user_id: str) -> UserRecord | None:
        return self._users.get(user_id)

    async def get_user_by_name(self, username: str) -> UserRecord | None:
        return next((u for u in self._users.values() if u.username == username), None)

    async def list_users(self) -> list[UserRecord]:
        return sorted(self._users.values(), key=lambda u: u.username)

    async def update_user(
        self,
        user_id: str,
        *,
        password_hash: str | None = None,
        roles: tuple[str, ...] | None = None,
        disabled: bool | None = None,
    ) -> UserRecord | None:
        user = self._users.get(user_id)
        if user is None:
            return None
        updated = replace(
            user,
            password_hash=user.password_hash if password_hash is None else password_hash,
            roles=user.roles if roles is None else tuple(roles),
            disabled=user.disabled if disabled is None else disabled,
        )
        self._users[user_id] = updated
        return updated

    # -- login throttling ---------------------------------------------------------------------
    async def count_failures(self, bucket: str, *, now: float, window: float) -> int:
        return sum(1 for at, _ in self._failures.get(bucket, ()) if at > now - window)

    async def record_failure(self, bucket: str, *, now: float, window: float) -> int:
        # Kept until ``now + window``; purge_expired forgets them after that.
        self._failures.setdefault(bucket, []).append((now, now + window))
        return await self.count_failures(bucket, now=now, window=window)

    async def clear_failures(self, bucket: str) -> None:
        self._failures.pop(bucket, None)

    # -- live roles and claims ------------------------------------------------------------
    async def set_user_grants(
        self,
        user_id: str,
        *,
        roles: tuple[str, ...] | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> UserGrants:
        current = self._grants.get(user_id) or UserGrants(user_id, 0, None, {})
        grants = UserGrants(
            user_id,
            current.version + 1,
            current.roles if roles is None else tuple(roles),
            _json_round_trip(current.claims if claims is None else claims),
        )
        self._grants[user_id] = grants
        for handle, record in self._sessions.items():
            if record.user_id == user_id:
                self._sessions[handle] = replace(
                    record,
                    roles=record.roles if grants.roles is None else grants.roles,
                    claims=grants.claims,
                    roles_version=grants.version,
                )
        return grants

    async def get_user_grants(self, user_id: str) -> UserGrants | None:
        return self._grants.get(user_id)
