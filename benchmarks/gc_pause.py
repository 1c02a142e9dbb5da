"""How long a full (generation 2) garbage collection pauses the server, with the token
cache empty and full (chaos report O2: 97-119 ms with 100k cached tokens).

One process, no network: an ``AuthState`` in stateless mode on the memory store (HS256,
the cheapest signature to fill the cache with; an entry is the same whatever the
algorithm), its token cache filled through the request path (``authenticate_from_memory``),
then ``gc.collect()`` timed (median of 7), without and with ``gc.freeze()`` after
start-up (what ``authstate serve`` does: start-up objects move to the permanent generation
and full collections stop walking them). Also printed: the GC-tracked objects each cached
token adds (the entry, its claims, its principal and the principal's token info).

    .venv/bin/python benchmarks/gc_pause.py [ENTRIES]      # default 100000, ~20 s
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import time

from authstate import AuthState, Settings

SECRET = "gc-pause-benchmark-secret-not-for-production!"  # noqa: S105 - benchmark only


def full_collection_ms(repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        gc.collect()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


async def main(entries: int) -> None:
    settings = Settings(mode="stateless", store="memory://", secret=SECRET, algorithm="HS256")
    async with AuthState(settings) as auth:
        mode = auth._mode  # the internal cache is what is measured
        tokens = auth._tokens
        assert mode is not None
        print(f"python {sys.version.split()[0]}, {entries:,} entries")
        empty = full_collection_ms()
        gc.freeze()  # what authstate serve does after start-up
        empty_frozen = full_collection_ms()
        tracked_before = len(gc.get_objects())
        for n in range(entries):
            token, _ = tokens.issue(f"user{n}", ("staff",), generation=0)
            mode.authenticate_from_memory(token)
        gc.collect()
        per_entry = (len(gc.get_objects()) - tracked_before) / entries
        full_frozen = full_collection_ms()
        gc.unfreeze()
        full = full_collection_ms()
        print(f"{'':28}{'no freeze':>12}{'start-up frozen':>18}")
        print(f"{'empty cache':28}{empty:>9.1f} ms{empty_frozen:>15.1f} ms")
        print(f"{'full cache':28}{full:>9.1f} ms{full_frozen:>15.1f} ms")
        print(f"GC-tracked objects per cached token: {per_entry:.1f}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000))
