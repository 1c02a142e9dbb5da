"""Scale: session lookup cost, login rate and store size as the store fills up.

Each store is filled to each size in turn (10³ … 10⁶; Redis and a local 3-master Redis
Cluster also to 10⁷ in a full run), five sessions per user; at each size, a sample of 2,000
session IDs spread over everything stored so far is authenticated cold (``forget`` first:
SHA-256, the store read, the checks) and warm (the node's cache). The login rate is
``create_session`` through the store protocol, timed: the whole fill for the in-process
stores and PostgreSQL, the last ``LOGINS`` sessions of each size for Redis, whose bulk is
written by ``RedisStore.import_sessions`` (the same layout, pipelined) so a 10⁷ fill takes
minutes, not hours. Sizes: the growth of this process's resident memory (memory store),
the database and WAL files (SQLite), ``pg_total_relation_size`` of the sessions table
(PostgreSQL), the growth of ``used_memory`` (Redis: server-wide, other clients of the server
can disturb it; Redis Cluster: summed over its masters). Everything a Redis kind wrote is
deleted when it is done (its prefix; the cluster is stopped).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import random
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from authstate.asgi.auth_state import AuthState
from authstate.bench._context import Context
from authstate.bench._env import _drop_redis_prefix
from authstate.bench._timing import relative_spread
from authstate.bench.apps import start_authstate
from authstate.bench.redis_cluster import local_cluster
from authstate.bench.report import Table, ratio, us
from authstate.crypto.ids import hash_secret, new_handle, new_secret_id
from authstate.stores import parse_store_url
from authstate.stores.base import SessionRecord

SAMPLE = 2_000
_CHUNK = 64  # concurrent creations on a network store
_IMPORT_BATCH = 5_000  # records per import_sessions call (whole users: a multiple of 5)
REDIS_KINDS = ("redis", "redis-cluster")


def _record(index: int, secret: str, now: float) -> SessionRecord:
    return SessionRecord(
        key=hash_secret(secret),
        handle=new_handle(),
        user_id=f"scale-user-{index // 5}",
        kind="session",
        created_at=now,
        last_seen_at=now,
        expires_at=now + 7 * 86400,
        idle_timeout=86400.0,
        roles=("staff",),
        user_agent="Mozilla/5.0 (X11; Linux x86_64) authstate-bench",
        ip="127.0.0.1",
        data={"theme": "dark"},
    )


def _file_sizes(*paths: str) -> int:
    return sum(os.path.getsize(p) for p in paths if os.path.exists(p))


def _rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def _size(auth: AuthState, kind: str, baseline: int, nodes: list[str]) -> int:
    if kind == "memory":
        return _rss_bytes() - baseline
    if kind == "sqlite":
        _, path = parse_store_url(auth.settings.store)
        return await asyncio.to_thread(_file_sizes, path, path + "-wal", path + "-shm")
    if kind == "postgres":
        import asyncpg

        conn = await asyncpg.connect(auth.settings.store)
        try:
            return int(await conn.fetchval("SELECT pg_total_relation_size('authstate_sessions')"))
        finally:
            await conn.close()
    return await _redis_used(nodes) - baseline


async def _redis_used(nodes: list[str]) -> int:
    """``used_memory`` summed over ``nodes`` (Redis URLs)."""
    import redis.asyncio

    total = 0
    for url in nodes:
        client = redis.asyncio.Redis.from_url(url)
        try:
            total += int((await client.info("memory"))["used_memory"])
        finally:
            await client.aclose()
    return total


class Reservoir:
    """A uniform sample of every session ID created so far (Algorithm R)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.seen = 0
        self.items: list[str] = []

    def add(self, secret: str) -> None:
        self.seen += 1
        if len(self.items) < self.size:
            self.items.append(secret)
        else:
            slot = random.randrange(self.seen)  # noqa: S311 - sampling, not security
            if slot < self.size:
                self.items[slot] = secret


async def _fill(auth: AuthState, kind: str, start: int, stop: int, keep: Reservoir) -> None:
    """Sessions ``start`` … ``stop - 1`` through ``create_session``."""
    store = auth.store
    now = time.time()
    if kind in ("memory", "sqlite"):
        for index in range(start, stop):
            secret = new_secret_id()
            await store.create_session(_record(index, secret, now))
            keep.add(secret)
            if index % 1000 == 0:
                await asyncio.sleep(0)  # these stores never suspend: let the bus poll run
        return
    for chunk in range(start, stop, _CHUNK):
        batch = [(i, new_secret_id()) for i in range(chunk, min(stop, chunk + _CHUNK))]
        await asyncio.gather(*(store.create_session(_record(i, s, now)) for i, s in batch))
        for _, secret in batch:
            keep.add(secret)


async def _import(auth: AuthState, start: int, stop: int, keep: Reservoir) -> None:
    """Sessions ``start`` … ``stop - 1`` through ``RedisStore.import_sessions``: the next
    batch is built while Redis writes the last one."""
    store: Any = auth.store
    now, pending = time.time(), None
    for chunk in range(start, stop, _IMPORT_BATCH):
        batch = []
        for index in range(chunk, min(stop, chunk + _IMPORT_BATCH)):
            secret = new_secret_id()
            keep.add(secret)
            batch.append(_record(index, secret, now))
        if pending is not None:
            await pending
        pending = asyncio.ensure_future(store.import_sessions(batch))
        await asyncio.sleep(0)  # let it send before this builds the next batch
    if pending is not None:
        await pending


async def _grow(
    auth: AuthState, kind: str, start: int, stop: int, keep: Reservoir, logins: int
) -> float:
    """Fill from ``start`` to ``stop``; the login rate (``create_session`` per second)."""
    timed = start
    if kind in REDIS_KINDS:
        timed = max(start, stop - logins)
        await _import(auth, start, timed, keep)
    began = time.perf_counter()
    await _fill(auth, kind, timed, stop, keep)
    return (stop - timed) / (time.perf_counter() - began) if stop > timed else float("nan")


async def _fresh(auth: AuthState) -> None:
    """Wait (up to 10 s) until the node's bus is fresh: a node only serves sessions from
    its cache then, and a long fill without suspending can leave a polling bus behind."""
    for _ in range(200):
        if auth.context.freshness.is_fresh():
            return
        await asyncio.sleep(0.05)


async def _lookups(
    auth: AuthState, sample: list[str], *, cold: bool, clock: Callable[[], float]
) -> float:
    """µs per authenticate over one pass through ``sample`` (garbage collector off)."""
    mode = auth.mode
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = clock()
        for value in sample:
            if cold:
                mode.forget(value)
            await auth.authenticate(value)
        return (clock() - start) / len(sample) * 1e6
    finally:
        if enabled:
            gc.enable()


def _sizes(ctx: Context, kind: str) -> list[int]:
    sizes = set(ctx.options.scale)
    if kind in REDIS_KINDS:
        sizes |= set(ctx.options.redis_scale)
    return sorted(sizes)


@contextlib.asynccontextmanager
async def _store_for(ctx: Context, kind: str) -> AsyncIterator[tuple[str, list[str]]]:
    """A fresh store URL of ``kind`` and the Redis nodes to measure; afterwards, what a Redis
    kind wrote is gone (its prefix deleted; the local cluster stopped)."""
    if kind == "redis-cluster":
        with tempfile.TemporaryDirectory(prefix="authstate-bench-cluster-") as directory:
            cluster = await asyncio.to_thread(lambda: local_cluster(Path(directory)))
            ports = await asyncio.to_thread(cluster.__enter__)
            try:
                nodes = [f"redis://127.0.0.1:{port}/0" for port in ports]
                yield f"redis+cluster://127.0.0.1:{ports[0]}?prefix=scale:", nodes
            finally:
                await asyncio.to_thread(cluster.__exit__, None, None, None)
        return
    url = ctx.stores.fresh(kind, "scale")
    if kind != "redis":
        yield url, []
        return
    try:
        yield url, [url.split("?", 1)[0]]
    finally:
        prefix = dict(parse_qsl(urlsplit(url).query))["prefix"]
        with contextlib.suppress(Exception):
            await asyncio.to_thread(_drop_redis_prefix, ctx.stores.redis_url, prefix)


async def run(ctx: Context) -> Table:
    options = ctx.options
    kinds = ctx.store_kinds()
    if "redis" in kinds and options.scale_cluster:
        kinds.insert(kinds.index("redis") + 1, "redis-cluster")
    progress = ctx.progress
    progress.section("scale", sum(len(_sizes(ctx, kind)) for kind in kinds))
    table = Table(
        "scale",
        "Scale: session lookup (µs per authenticate), logins and store size by sessions stored",
        [
            "store / sessions",
            "cold lookup",
            "warm lookup",
            "cold × smallest",
            "logins/s",
            "fill",
            "store size",
            "bytes/session",
        ],
    )
    rounds = 3 if options.quick else 7
    logins = 1_000 if options.quick else 5_000
    for kind in kinds:
        # A network store's cold lookup waits for the server: wall clock. Everything else
        # runs in this process: its CPU time, which other processes cannot inflate.
        local = kind in ("memory", "sqlite")
        cold_clock = time.process_time if local else time.perf_counter
        auth: AuthState | None = None
        try:
            async with _store_for(ctx, kind) as (url, nodes):
                auth = await start_authstate({"mode": "session", "store": url})
                try:
                    await _measure(ctx, table, auth, kind, nodes, rounds, logins, cold_clock)
                finally:
                    with contextlib.suppress(Exception):
                        await auth.stop()
        except Exception as exc:
            table.notes.append(f"{kind}: stopped early: {exc!r}")
    table.notes.append(
        f"The same number of session IDs (up to {SAMPLE:,}, drawn uniformly from everything "
        "stored so far) is looked up at each size; "
        "cold = the node forgot the cookie (SHA-256 + store read; wall clock for Redis and "
        "PostgreSQL, CPU time otherwise), warm = cached (CPU time). Memory store size = "
        "growth of this process's resident memory. logins/s = create_session through the "
        f"store, {_CHUNK} at a time on a network store (Redis: the last {logins:,} of each "
        "size; the rest is written by import_sessions); fill = seconds to reach the size."
    )
    progress.finish("scale")
    return table


async def _measure(
    ctx: Context,
    table: Table,
    auth: AuthState,
    kind: str,
    nodes: list[str],
    rounds: int,
    logins: int,
    cold_clock: Callable[[], float],
) -> None:
    progress, sizes = ctx.progress, _sizes(ctx, kind)
    baseline = _rss_bytes() if kind == "memory" else 0
    if nodes:
        baseline = await _redis_used(nodes)
    # The same number of IDs at every size, drawn from everything stored so far.
    sample_size = min(SAMPLE, sizes[0])
    keep = Reservoir(sample_size * 4)
    filled = 0
    first_cold = float("nan")
    for size in sizes:
        progress.say("scale", f"{kind}: filling to {size:,}")
        began = time.perf_counter()
        rate = await _grow(auth, kind, filled, size, keep, logins)
        fill_seconds = time.perf_counter() - began
        filled = size
        sample = random.sample(keep.items, sample_size)
        await _fresh(auth)
        await _lookups(auth, sample[:200], cold=True, clock=cold_clock)  # warm up
        colds, warms = [], []
        for _ in range(rounds):  # cold and warm passes interleaved
            colds.append(await _lookups(auth, sample, cold=True, clock=cold_clock))
            await _fresh(auth)
            # The first warm pass after a cold one runs on freshly built entries,
            # out of the CPU's caches; measure the next (all 2,000 still rotate).
            await _lookups(auth, sample, cold=False, clock=time.process_time)
            warms.append(await _lookups(auth, sample, cold=False, clock=time.process_time))
        cold, warm = statistics.median(colds), statistics.median(warms)
        stored = await _size(auth, kind, baseline, nodes)
        if size == sizes[0]:
            first_cold = cold
        times = cold / first_cold if first_cold else float("nan")
        table.add(
            [
                f"{kind} / {size:,}",
                us(cold),
                us(warm),
                ratio(times),
                f"{rate:,.0f}",
                f"{fill_seconds:,.0f} s",
                f"{stored / 1e6:,.1f} MB",
                f"{stored / size:,.0f}",
            ],
            store=kind,
            sessions=size,
            cold_us=cold,
            warm_us=warm,
            cold_times_smallest=times,
            cold_noise=relative_spread(colds),
            warm_noise=relative_spread(warms),
            store_bytes=stored,
            logins_per_second=rate,
            fill_seconds=fill_seconds,
        )
        progress.advance("scale", what=f"{kind} {size:,}")
