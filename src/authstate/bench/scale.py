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
import os
import random
import statistics
import time

from authstate.auth import AuthState
from authstate.bench._context import Context
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


async def _fill(
    auth: AuthState, kind: str, start: int, stop: int, keep: list[str], every: int
) -> None:
    store = auth.store
    now = time.time()
    if kind in ("memory", "sqlite"):
        for index in range(start, stop):
            secret = new_secret_id()
            await store.create_session(_record(index, secret, now))
            if index % every == 0:
                keep.append(secret)
        return
    for chunk in range(start, stop, _CHUNK):
        batch = [(i, new_secret_id()) for i in range(chunk, min(stop, chunk + _CHUNK))]
        await asyncio.gather(*(store.create_session(_record(i, s, now)) for i, s in batch))
        keep.extend(s for i, s in batch if i % every == 0)


async def _lookups(auth: AuthState, sample: list[str], *, cold: bool, rounds: int) -> float:
    """Median µs per authenticate over ``rounds`` passes through ``sample``."""
    mode = auth.mode
    per_round = []
    for _ in range(rounds):
        start = time.perf_counter()
        for value in sample:
            if cold:
                mode.forget(value)
            await auth.authenticate(value)
        per_round.append((time.perf_counter() - start) / len(sample) * 1e6)
    return statistics.median(per_round)


async def run(ctx: Context) -> Table:
    options = ctx.options
    sizes = sorted(options.scale)
    kinds = ctx.store_kinds()
    progress = ctx.progress
    progress.section("scale", len(kinds) * len(sizes))
    table = Table(
        "scale",
        "Scale: session lookup (µs per authenticate, wall clock) and store size by sessions stored",
        [
            "store / sessions",
            "cold lookup",
            "warm lookup",
            "cold × smallest",
            "store size",
            "bytes/session",
        ],
    )
    rounds = 3 if options.quick else 5
    for kind in kinds:
        url = ctx.stores.fresh(kind, "scale")
        auth: AuthState | None = None
        try:
            auth = await start_authstate({"mode": "session", "store": url})
            baseline = _rss_bytes() if kind == "memory" else 0
            if kind == "redis":
                baseline = await _redis_used(auth)
            keep: list[str] = []
            filled = 0
            first_cold = float("nan")
            every = max(1, sizes[-1] // (SAMPLE * 4))
            for size in sizes:
                progress.say("scale", f"{kind}: filling to {size:,}")
                await _fill(auth, kind, filled, size, keep, every)
                filled = size
                sample = random.sample(keep, min(SAMPLE, len(keep)))
                await _lookups(auth, sample[:200], cold=True, rounds=1)  # connections warm
                cold = await _lookups(auth, sample, cold=True, rounds=rounds)
                await _lookups(auth, sample, cold=False, rounds=1)
                warm = await _lookups(auth, sample, cold=False, rounds=rounds)
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
        f"{SAMPLE:,} session IDs spread over the whole store are looked up per size; "
        "cold = the node forgot the cookie (SHA-256 + store read), warm = cached. "
        "Memory store size = growth of this process's resident memory."
    )
    progress.finish("scale")
    return table
