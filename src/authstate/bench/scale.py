"""Scale: session lookup cost and store size as the store fills up (10³ … 10⁶ sessions).

Each store is filled through the store protocol (``create_session``, five sessions per
user) to each size in turn; at each size, a sample of 2,000 session IDs spread over
everything stored so far is authenticated cold (``forget`` first: SHA-256, the store
read, the checks) and warm (the node's cache). Sizes: the growth of this process's
resident memory (memory store), the database and WAL files (SQLite),
``pg_total_relation_size`` of the sessions table (PostgreSQL), the growth of Redis's
``used_memory`` (server-wide: other clients of the server can disturb it).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import random
import statistics
import time
from collections.abc import Callable

from authstate.asgi.auth_state import AuthState
from authstate.bench._context import Context
from authstate.bench._timing import relative_spread
from authstate.bench.apps import start_authstate
from authstate.bench.report import Table, ratio, us
from authstate.crypto.ids import hash_secret, new_handle, new_secret_id
from authstate.stores import parse_store_url
from authstate.stores.base import SessionRecord

SAMPLE = 2_000
_CHUNK = 64  # concurrent creations on a network store


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


async def _size(auth: AuthState, kind: str, baseline: int) -> int:
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
    return await _redis_used(auth) - baseline


async def _redis_used(auth: AuthState) -> int:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(auth.settings.store.split("?", 1)[0])
    try:
        info = await client.info("memory")
        return int(info["used_memory"])
    finally:
        await client.aclose()


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


async def run(ctx: Context) -> Table:
    options = ctx.options
    sizes = sorted(options.scale)
    kinds = ctx.store_kinds()
    progress = ctx.progress
    progress.section("scale", len(kinds) * len(sizes))
    table = Table(
        "scale",
        "Scale: session lookup (µs per authenticate) and store size by sessions stored",
        [
            "store / sessions",
            "cold lookup",
            "warm lookup",
            "cold × smallest",
            "store size",
            "bytes/session",
        ],
    )
    rounds = 3 if options.quick else 7
    for kind in kinds:
        # A network store's cold lookup waits for the server: wall clock. Everything else
        # runs in this process: its CPU time, which other processes cannot inflate.
        cold_clock = time.perf_counter if kind in ("redis", "postgres") else time.process_time
        url = ctx.stores.fresh(kind, "scale")
        auth: AuthState | None = None
        try:
            auth = await start_authstate({"mode": "session", "store": url})
            baseline = _rss_bytes() if kind == "memory" else 0
            if kind == "redis":
                baseline = await _redis_used(auth)
            # The same number of IDs at every size, drawn from everything stored so far.
            sample_size = min(SAMPLE, sizes[0])
            keep = Reservoir(sample_size * 4)
            filled = 0
            first_cold = float("nan")
            for size in sizes:
                progress.say("scale", f"{kind}: filling to {size:,}")
                await _fill(auth, kind, filled, size, keep)
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
                stored = await _size(auth, kind, baseline)
                if size == sizes[0]:
                    first_cold = cold
                times = cold / first_cold if first_cold else float("nan")
                table.add(
                    [
                        f"{kind} / {size:,}",
                        us(cold),
                        us(warm),
                        ratio(times),
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
                )
                progress.advance("scale", what=f"{kind} {size:,}")
        except Exception as exc:
            table.notes.append(f"{kind}: stopped early: {exc!r}")
        finally:
            if auth is not None:
                with contextlib.suppress(Exception):
                    await auth.stop()
    table.notes.append(
        f"The same number of session IDs (up to {SAMPLE:,}, drawn uniformly from everything "
        "stored so far) is looked up at each size; "
        "cold = the node forgot the cookie (SHA-256 + store read; wall clock for Redis and "
        "PostgreSQL, CPU time otherwise), warm = cached (CPU time). Memory store size = "
        "growth of this process's resident memory."
    )
    progress.finish("scale")
    return table
