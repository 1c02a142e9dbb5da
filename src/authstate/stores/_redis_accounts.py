"""Signing keys, users, login failures and revocation generations in Redis.

The plain records of the Redis store, kept apart from sessions and the bus: each is a
hash or a counter, written by one command or one single-slot script. Signing keys and
users are few and created rarely, so each kind lives in one slot (``{g}``, ``{users}``),
which makes "id or username taken" one atomic check. A user's generation sits in that
user's slot; a failure bucket is a sorted set of its own.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from authstate.errors import Conflict
from authstate.stores._redis_layout import (
    Layout,
    dec,
    enc,
    key_fields,
    ms,
    num,
    stored_key,
    user_fields,
    user_record,
)
from authstate.stores.base import StoredKey, UserRecord


class RedisAccess:
    """What the mixins of ``RedisStore`` use from it: the layout, the client, the scripts."""

    layout: Layout

    def _redis(self) -> AbstractAsyncContextManager[Any]:
        """The client, with driver errors translated to ``StoreUnavailable``."""
        raise NotImplementedError

    async def _run(self, name: str, keys: Sequence[bytes], args: Sequence[Any] = ()) -> Any:
        """Run the script ``name`` of ``_redis_scripts``."""
        raise NotImplementedError

    async def _run_on(self, name: str, keys: list[bytes], args: list[bytes], where: bytes) -> Any:
        """Run the script ``name`` on the server holding the key ``where``."""
        raise NotImplementedError

    def _node_of(self, key: bytes) -> Any:
        """The cluster node serving ``key`` (``StoreUnavailable`` when none is known)."""
        raise NotImplementedError


class RedisAccounts(RedisAccess):
    """The ``Store`` methods for keys, users, failures and generations (a mixin)."""

    async def bump_user_generation(self, user_id: str) -> int:
        async with self._redis() as client:
            return int(await client.incr(self.layout.generation(user_id)))

    async def get_user_generation(self, user_id: str) -> int:
        async with self._redis() as client:
            return int(await client.get(self.layout.generation(user_id)) or 0)

    # -- keys ---------------------------------------------------------------------------------
    async def save_key(self, key: StoredKey) -> None:
        saved = await self._run(
            "SAVE_KEY",
            [self.layout.signing_key(key.kid), self.layout.kids],
            [enc(key.kid), num(key.created_at), *key_fields(key)],
        )
        if not saved:
            raise Conflict(f"a key with kid {key.kid!r} exists")

    async def load_keys(self) -> list[StoredKey]:
        async with self._redis() as client:
            kids = await client.zrange(self.layout.kids, 0, -1)
            pipe = client.pipeline(transaction=False)
            for kid in kids:
                pipe.hgetall(self.layout.signing_key(dec(kid)))
            rows = await pipe.execute() if kids else []
        return sorted((stored_key(row) for row in rows if row), key=lambda key: key.created_at)

    async def retire_key(self, kid: str, retire_after: float) -> None:
        await self._run("RETIRE_KEY", [self.layout.signing_key(kid)], [num(retire_after)])

    async def delete_key(self, kid: str) -> None:
        async with self._redis() as client:
            await client.delete(self.layout.signing_key(kid))
            await client.zrem(self.layout.kids, enc(kid))

    # -- users --------------------------------------------------------------------------------
    async def create_user(self, user: UserRecord) -> None:
        k = self.layout
        fields = user_fields(
            user_id=user.id,
            username=user.username,
            password_hash=user.password_hash,
            roles=user.roles,
            created_at=user.created_at,
            disabled=user.disabled,
        )
        created = await self._run(
            "CREATE_USER",
            [k.user(user.id), k.username(user.username), k.user_ids],
            [enc(user.id), *fields],
        )
        if not created:
            raise Conflict("a user with this id or username exists")

    async def get_user(self, user_id: str) -> UserRecord | None:
        async with self._redis() as client:
            raw = await client.hgetall(self.layout.user(user_id))
        return user_record(raw) if raw else None

    async def get_user_by_name(self, username: str) -> UserRecord | None:
        async with self._redis() as client:
            user_id = await client.get(self.layout.username(username))
        return None if user_id is None else await self.get_user(dec(user_id))

    async def list_users(self) -> list[UserRecord]:
        async with self._redis() as client:
            ids = await client.smembers(self.layout.user_ids)
            pipe = client.pipeline(transaction=False)
            for user_id in ids:
                pipe.hgetall(self.layout.user(dec(user_id)))
            rows = await pipe.execute() if ids else []
        return sorted((user_record(row) for row in rows if row), key=lambda u: u.username)

    async def update_user(
        self,
        user_id: str,
        *,
        password_hash: str | None = None,
        roles: tuple[str, ...] | None = None,
        disabled: bool | None = None,
    ) -> UserRecord | None:
        fields = user_fields(password_hash=password_hash, roles=roles, disabled=disabled)
        raw = await self._run("UPDATE_USER", [self.layout.user(user_id)], fields)
        return None if raw is None else user_record(raw)

    # -- login throttling ---------------------------------------------------------------------
    async def count_failures(self, bucket: str, *, now: float, window: float) -> int:
        async with self._redis() as client:
            since = b"(" + num(now - window)
            return int(await client.zcount(self.layout.failures(bucket), since, "+inf"))

    async def record_failure(self, bucket: str, *, now: float, window: float) -> int:
        forget_at = now + window
        # Members must be unique (two failures in the same instant both count) and carry
        # their own forget time for the purge.
        member = num(forget_at) + b"|" + os.urandom(8).hex().encode()
        count = await self._run(
            "RECORD_FAILURE",
            [self.layout.failures(bucket)],
            [num(now), member, ms(forget_at), num(now - window)],
        )
        async with self._redis() as client:
            await client.zadd(self.layout.failing, {enc(bucket): forget_at}, gt=True)
        return int(count)

    async def clear_failures(self, bucket: str) -> None:
        async with self._redis() as client:
            await client.delete(self.layout.failures(bucket))
            await client.zrem(self.layout.failing, enc(bucket))

    async def _purge_failures(self, now: float) -> int:
        k, count = self.layout, 0
        async with self._redis() as client:
            due = await client.zrangebyscore(k.failing, "-inf", now)
        for bucket in due:
            forgotten, left = await self._run(
                "PURGE_FAILURES", [k.failures(dec(bucket))], [num(now)]
            )
            count += int(forgotten)
            if not left:
                async with self._redis() as client:
                    await client.zrem(k.failing, bucket)
        return count
