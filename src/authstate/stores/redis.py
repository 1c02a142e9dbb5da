"""The Redis store: redis-py asyncio (with hiredis), Lua scripts for atomicity, pub/sub bus.

URLs: ``redis://[user:password@]host:port/db``, ``rediss://…`` (TLS) and
``redis+cluster://host:port`` (any node of a Redis Cluster; database 0 only). The query
option ``prefix=`` (default ``authstate:``) starts every key and the bus channel, so
several stores or test runs can share one server.

Key layout, hash tags and why lookups go through pointers: ``_redis_layout``. The scripts
and what makes each atomic: ``_redis_scripts``. One part per concern: sessions and refresh
families (``_redis_sessions``), keys, users, login throttling and generations
(``_redis_accounts``), the bus (``_redis_bus``); this module has the connection, the
lifecycle and the change log.

Sessions carry no Redis TTL (layout 2 packs a user's sessions into one string):
``purge_expired(now)``, which every running node calls, deletes the dead ones by the
caller's clock (the store is not the judge of time) with their bucket entries, and trims
the change log. Consumed refresh keys expire by themselves with their family
(``PXAT``), and so do login-failure buckets.

Every redis-py or network error leaves this module as ``StoreUnavailable`` (``_translated``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from authstate._time import Clock, SystemClock
from authstate.errors import ConfigurationError, StoreUnavailable
from authstate.stores import _redis_migrate
from authstate.stores import _redis_scripts as lua
from authstate.stores._bus import new_epoch
from authstate.stores._redis_accounts import RedisAccounts
from authstate.stores._redis_bus import PubSubBus
from authstate.stores._redis_grants import RedisGrants
from authstate.stores._redis_layout import (
    DEFAULT_PREFIX,
    Layout,
    change_body,
    change_entry,
    dec,
    num,
)
from authstate.stores._redis_session_data import RedisSessionData
from authstate.stores.base import (
    LATEST,
    Change,
    ChangeKind,
    ChangeListener,
    LogRead,
    Reconciler,
)

_TIMEOUT = 5.0
LAYOUT = b"2"  # the session layout (``_redis_layout``) this version reads and writes
_REVOCATION_KINDS = frozenset({ChangeKind.JTI, ChangeKind.SID, ChangeKind.USER, ChangeKind.ROLES})


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
    rest = urlencode([(k, v) for k, v in query if k not in ("prefix", "migrate")])
    client_url = urlunsplit(("redis" if cluster else scheme, parts.netloc, parts.path, rest, ""))
    return client_url, cluster, prefix


class RedisStore(RedisSessionData, RedisAccounts, RedisGrants):
    """A ``Store`` in Redis or Redis Cluster, shared by every node with the same prefix."""

    url_scheme = "redis"

    def __init__(self, url: str, *, clock: Clock | None = None, heartbeat: float = 1.0) -> None:
        self.url = url
        self._client_url, self.cluster, self.prefix = _parse_url(url)
        # ``migrate=1``: convert sessions of layout 1 on open (``_redis_migrate``).
        self._migrate = ("migrate", "1") in parse_qsl(urlsplit(url).query)
        self._where = _where(url)
        self._clock: Clock = clock or SystemClock()
        self.layout = Layout(self.prefix)
        self._client: Any = None
        self._scripts: dict[str, Any] = {}
        self._bus = PubSubBus(
            self._connect_bus, self.layout.channel, self.read_log, self._clock, keepalive=heartbeat
        )

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

    async def _run_on(self, name: str, keys: list[bytes], args: list[bytes], where: bytes) -> Any:
        """``_run`` on the server holding ``where``, for a script whose keys are all there
        but in several slots (``allow-cross-slot-keys``), which a cluster client would refuse
        to route."""
        if not self.cluster:
            return await self._run(name, keys, args)
        node = self._node_of(where)
        client = self._open_client()
        script = self._scripts[name]
        with _translated(self._where):
            try:
                return await client.execute_command(
                    "EVALSHA", script.sha, len(keys), *keys, *args, target_nodes=node
                )
            except redis.exceptions.NoScriptError:
                await client.execute_command("SCRIPT LOAD", script.script, target_nodes=node)
                return await client.execute_command(
                    "EVALSHA", script.sha, len(keys), *keys, *args, target_nodes=node
                )

    def _node_of(self, key: bytes) -> Any:
        client = self._open_client()
        with _translated(self._where):  # SlotNotCoveredError while slots are uncovered
            return client.get_node_from_key(key)

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
        try:
            await self._check_layout()
        except BaseException:
            await self.close()
            raise

    async def _check_layout(self) -> None:
        """Refuse a prefix that holds sessions in a layout this version does not read."""
        async with self._redis() as client:
            found = await client.get(self.layout.version)
        if found == LAYOUT:
            return
        where = f"{self._where}, key prefix {self.prefix!r}"
        if found is not None:
            raise ConfigurationError(
                f"{where}: session layout {found.decode(errors='replace')} (written by a newer"
                f" authstate?); this version reads layout {LAYOUT.decode()}"
            )
        if await _redis_migrate.has_layout_1(self):
            if not self._migrate:
                raise ConfigurationError(
                    f"{where}: sessions in the layout of authstate 0.1 (layout 1); this"
                    f" version uses layout {LAYOUT.decode()}. Stop every older node, then start"
                    " one node with migrate=1 added to the store URL to convert them"
                    " (docs/stores.md, Redis: upgrading)"
                )
            await _redis_migrate.migrate(self)
        async with self._redis() as client:
            await client.set(self.layout.version, LAYOUT, nx=True)

    async def close(self) -> None:
        await self._bus.stop()
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()

    async def ping(self) -> None:
        async with self._redis() as client:
            await client.ping()

    async def purge_expired(self, now: float) -> int:
        log, until = self.layout.log, self.layout.until
        sessions = 0
        for shard in self.layout.due_shards:
            sessions += await self._purge_sessions(shard, now)
        changes = int(await self._run("PURGE_CHANGES", [log, until], [num(now)]))
        return sessions + changes + await self._purge_failures(now)

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

    def bus_lag(self) -> float | None:
        return self._bus.lag()

    def describe_bus(self) -> str:
        where = "Redis Cluster pub/sub" if self.cluster else "pub/sub"
        return f"{where}, health check every {self._bus.keepalive:g} s"
