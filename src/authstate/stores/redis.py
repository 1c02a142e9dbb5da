"""The Redis store: redis-py asyncio (with hiredis), Lua scripts for atomicity, pub/sub bus.

URLs: ``redis://[user:password@]host:port/db``, ``rediss://…`` (TLS) and
``redis+cluster://host:port`` (any node of a Redis Cluster; database 0 only). The query
option ``prefix=`` (default ``authstate:``) starts every key and the bus channel, so
several stores or test runs can share one server.

Key layout, hash tags and why lookups go through pointers: ``_redis_layout``. The scripts
and what makes each atomic: ``_redis_scripts``. The bus: ``_redis_bus``.

Sessions expire by themselves (``PEXPIREAT`` at the moment they die, pushed forward by
``touch_session`` and rotation up to the absolute expiry), and so do pointers, consumed
refresh keys and failure buckets. ``purge_expired(now)`` does what TTLs cannot: it applies
the caller's clock (the store is not the judge of time) and trims the change log.

Every redis-py or network error leaves this module as ``StoreUnavailable`` (``_translated``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from authstate._time import Clock, SystemClock
from authstate.errors import ConfigurationError, Conflict, StoreUnavailable
from authstate.stores import _redis_scripts as lua
from authstate.stores._bus import new_epoch
from authstate.stores._redis_accounts import RedisAccounts
from authstate.stores._redis_bus import PubSubBus
from authstate.stores._redis_layout import (
    DEFAULT_PREFIX,
    Layout,
    change_body,
    change_entry,
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
from authstate.stores.base import (
    LATEST,
    Change,
    ChangeKind,
    ChangeListener,
    LogRead,
    Reconciler,
    SessionRecord,
)

_TIMEOUT = 5.0
_CLAIM_MS = 30_000  # a pointer claimed before its record is written lives this long at first
_PURGE_BATCH = 500
_REVOCATION_KINDS = frozenset({ChangeKind.JTI, ChangeKind.SID, ChangeKind.USER})


@contextlib.contextmanager
def _translated(where: str) -> Iterator[None]:
    # The one place driver exceptions become StoreUnavailable. str(), not repr(): redis-py's
    # repr is only "network:ConnectionError", without the cause an operator needs.
    try:
        yield
    except (redis.exceptions.RedisError, redis.exceptions.RedisClusterException, OSError) as exc:
        raise StoreUnavailable(reason=f"{where}: {type(exc).__name__}: {exc}") from exc


def _where(url: str) -> str:
    """``"Redis at host:port/db"`` (no password) for errors: which server refused."""
    parts = urlsplit(url)
    kind = "Redis Cluster" if parts.scheme.lower() == "redis+cluster" else "Redis"
    try:
        port = parts.port or 6379
    except ValueError:
        return kind  # redis-py reports the bad port itself
    host = parts.hostname or "localhost"
    database = parts.path if parts.path not in ("", "/") else ""
    return f"{kind} at {f'[{host}]' if ':' in host else host}:{port}{database}"


def _parse_url(url: str) -> tuple[str, bool, str]:
    """``(url for redis-py, is_cluster, key prefix)``; ``ConfigurationError`` if unusable."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("redis", "rediss", "redis+cluster"):
        raise ConfigurationError(f"{scheme}:// is not a Redis store URL")
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((v for k, v in query if k == "prefix"), DEFAULT_PREFIX)
    if "{" in prefix or "}" in prefix:
        raise ConfigurationError("the Redis key prefix must not contain { or } (hash tags)")
    cluster = scheme == "redis+cluster"
    if cluster and parts.path not in ("", "/", "/0"):
        raise ConfigurationError("Redis Cluster has only database 0")
    rest = urlencode([(k, v) for k, v in query if k != "prefix"])
    client_url = urlunsplit(("redis" if cluster else scheme, parts.netloc, parts.path, rest, ""))
    return client_url, cluster, prefix


class RedisStore(RedisPointers, RedisAccounts):
    """A ``Store`` in Redis or Redis Cluster, shared by every node with the same prefix."""

    url_scheme = "redis"

    def __init__(self, url: str, *, clock: Clock | None = None) -> None:
        self.url = url
        self._client_url, self.cluster, self.prefix = _parse_url(url)
        self._where = _where(url)
        self._clock: Clock = clock or SystemClock()
        self.layout = Layout(self.prefix)
        self._client: Any = None
        self._scripts: dict[str, Any] = {}
        self._bus = PubSubBus(self._connect_bus, self.layout.channel, self.read_log, self._clock)

    # -- plumbing -----------------------------------------------------------------------------
    def _options(self) -> dict[str, Any]:
        return {
            "socket_timeout": _TIMEOUT,
            "socket_connect_timeout": _TIMEOUT,
            "encoding_errors": "surrogatepass",
        }

    def _open_client(self) -> Any:
        client = self._client
        if client is None:
            raise StoreUnavailable(reason="the Redis store is closed")
        return client

    @contextlib.asynccontextmanager
    async def _redis(self) -> AsyncIterator[Any]:
        client = self._open_client()
        with _translated(self._where):
            yield client

    async def _run(self, name: str, keys: Sequence[bytes], args: Sequence[Any] = ()) -> Any:
        # Not through _redis(): an async context manager costs ~8 µs, on every session lookup.
        client = self._open_client()
        with _translated(self._where):
            return await self._scripts[name](keys=list(keys), args=list(args), client=client)

    async def _connect_bus(self) -> Any:
        options = {**self._options(), "retry": Retry(NoBackoff(), 0)}
        options["client_name"] = dec(self.layout.prefix) + "bus"
        options["socket_timeout"] = None  # the bus waits for messages as long as it likes
        if not self.cluster:
            return aioredis.Redis.from_url(self._client_url, **options)
        # The node serving the change log's slot runs the publish script: subscribing there
        # keeps "PONG after every earlier message" true (see _redis_bus).
        node = self._client.get_node_from_key(self.layout.seq)
        parts = urlsplit(self._client_url)
        netloc = f"{parts.netloc.rpartition('@')[0]}@" if "@" in parts.netloc else ""
        return aioredis.Redis.from_url(f"redis://{netloc}{node.host}:{node.port}/0", **options)

    # -- lifecycle ----------------------------------------------------------------------------
    async def open(self) -> None:
        if self._client is not None:
            return
        client: Any
        if self.cluster:
            client = RedisCluster.from_url(self._client_url, **self._options())
        else:
            client = aioredis.Redis.from_url(self._client_url, **self._options())
        try:
            with _translated(self._where):
                if self.cluster:
                    await client.initialize()
                await client.ping()
        except BaseException:
            with contextlib.suppress(Exception):
                await client.aclose()
            raise
        self._client = client
        self._scripts = {
            name: client.register_script(getattr(lua, name))
            for name in dir(lua)
            if name.isupper() and not name.startswith("_")
        }

    async def close(self) -> None:
        await self._bus.stop()
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()

    async def ping(self) -> None:
        async with self._redis() as client:
            await client.ping()

    # -- sessions and refresh families ---------------------------------------------------------
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

    async def purge_expired(self, now: float) -> int:
        log, until = self.layout.log, self.layout.until
        sessions = 0
        for shard in self.layout.expiring_shards:
            sessions += await self._purge_sessions(shard, now)
        changes = int(await self._run("PURGE_CHANGES", [log, until], [num(now)]))
        return sessions + changes + await self._purge_failures(now)

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

    # -- revocation state and the change log (the bus) -----------------------------------------
    async def publish(self, change: Change) -> Change:
        k = self.layout
        seq = await self._run(
            "PUBLISH",
            [k.seq, k.log, k.until],
            [k.channel, change_body(change), num(change.until)],
        )
        stored = Change(change.kind, change.value, change.until, change.generation, int(seq))
        if self._bus.running:
            # Read-your-writes on this node: its own listeners have the change on return.
            with contextlib.suppress(StoreUnavailable):
                await self._bus.catch_up()
        return stored

    async def changes_since(self, seq: int) -> list[Change]:
        return (await self.read_log(seq)).changes

    async def read_log(self, seq: int) -> LogRead:
        k = self.layout
        epoch, head, entries = await self._run(
            "READ_LOG", [k.epoch, k.seq, k.log], [seq, new_epoch()]
        )
        return LogRead(dec(epoch), int(head), [change_entry(entry) for entry in entries])

    async def active_revocations(self, now: float) -> tuple[list[Change], int]:
        head, entries = await self._run(
            "REVOCATIONS", [self.layout.seq, self.layout.until], [num(now)]
        )
        changes = [change_entry(entry) for entry in entries]
        active = sorted((c for c in changes if c.kind in _REVOCATION_KINDS), key=lambda c: c.seq)
        return active, int(head)

    async def listen(
        self, listener: ChangeListener, *, reconcile: Reconciler | None = None
    ) -> None:
        head = LogRead("", 0, []) if self._bus.running else await self.read_log(LATEST)
        self._bus.start(listener, head, reconcile)
        # Return once the node really listens, so a change published after this call cannot
        # slip by. A store that is down now is not an error here: the bus keeps retrying and
        # bus_healthy_since() tells the callers.
        await self._bus.wait_healthy(_TIMEOUT)

    def bus_healthy_since(self) -> float | None:
        return self._bus.healthy_since()
