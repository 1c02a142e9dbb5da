"""Every store call timed (a latency histogram per operation) and traced.

``instrument_store`` wraps a store so that each of its coroutine methods is timed; other
attributes pass through untouched. The warm request path makes no store call, so this
costs nothing there; a store call (a network round trip, or a SQLite statement) pays two
clock reads and a few integer additions.
"""

from __future__ import annotations

import bisect
import inspect
import time
from collections.abc import Callable, Coroutine
from typing import Any, cast

from authstate.stores.base import Store
from authstate.telemetry.tracing import store_span

# Upper bounds (seconds) of the latency buckets: from a local SQLite read to a stalled
# network store.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class _Series:
    __slots__ = ("buckets", "count", "sum")

    def __init__(self) -> None:
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one is +Inf
        self.count = 0
        self.sum = 0.0


class StoreStats:
    """Latency of store calls per operation (``get_session``, ``create_session``...)."""

    def __init__(self) -> None:
        self._series: dict[str, _Series] = {}

    def observe(self, operation: str, seconds: float) -> None:
        series = self._series.get(operation)
        if series is None:
            series = self._series[operation] = _Series()
        series.buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        series.count += 1
        series.sum += seconds

    def snapshot(self) -> list[tuple[str, list[int], int, float]]:
        """Per operation: cumulative bucket counts (``LATENCY_BUCKETS`` then +Inf), the
        number of calls and their total seconds."""
        out = []
        for operation, series in sorted(self._series.items()):
            cumulative, total = [], 0
            for count in series.buckets:
                total += count
                cumulative.append(total)
            out.append((operation, cumulative, series.count, series.sum))
        return out


class _InstrumentedStore:
    """A store whose coroutine methods are timed and traced; the rest passes through.

    Transparent on purpose: ``isinstance`` sees the wrapped store's class and attribute
    writes land on the wrapped store, so code (and tests) holding ``auth.store`` keep
    working with the object they configured."""

    __slots__ = ("_inner", "_seen", "_stats")

    def __init__(self, inner: Store, stats: StoreStats) -> None:
        object.__setattr__(self, "_inner", inner)
        object.__setattr__(self, "_stats", stats)
        # name -> (the coroutine method last found on the store, its timed wrapper)
        object.__setattr__(self, "_seen", {})

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return type(self._inner)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._inner, name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._inner, name)

    def __getattr__(self, name: str) -> Any:
        # Looked up on the store on every access: a test (or a fault injector) that
        # replaces a method on the store object is still heard. What we made of it is
        # reused while the store hands out the same method (bound methods compare equal
        # when they bind the same function to the same object).
        attr = getattr(self._inner, name)
        seen = self._seen.get(name)
        if seen is not None and seen[0] == attr:
            return seen[1]
        if name.startswith("_") or not inspect.iscoroutinefunction(attr):
            return attr
        timed = self._timed(name, attr)
        self._seen[name] = (attr, timed)
        return timed

    def _timed(
        self, name: str, method: Callable[..., Coroutine[Any, Any, Any]]
    ) -> Callable[..., Coroutine[Any, Any, Any]]:
        stats = self._stats
        scheme = str(getattr(self._inner, "url_scheme", ""))

        async def timed(*args: Any, **kwargs: Any) -> Any:
            with store_span(name, scheme):
                started = time.perf_counter()
                try:
                    return await method(*args, **kwargs)
                finally:
                    stats.observe(name, time.perf_counter() - started)

        return timed

    def __repr__(self) -> str:
        return f"instrumented({self._inner!r})"


def instrument_store(store: Store, stats: StoreStats) -> Store:
    """``store`` with each coroutine method timed into ``stats`` (and traced)."""
    return cast(Store, _InstrumentedStore(store, stats))
