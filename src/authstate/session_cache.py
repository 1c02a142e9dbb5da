"""A bounded in-process cache of recently used sessions, invalidated through the bus.

A hit is never trusted blindly: the caller re-checks expiry and the revocation state on
every hit, and the cache is bypassed whenever the bus is staler than the bound.

Besides the record, an entry keeps what the per-request path would otherwise recompute:
the instant the session stops being live (the earlier of its absolute and idle expiry)
and, once the mode has built it, the immutable ``Principal`` it stands for.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

from authstate.stores.base import SessionRecord

if TYPE_CHECKING:
    from authstate.principal import Principal


class CachedSession:
    """One cache entry. ``live_until`` (Unix seconds): the record is live while
    ``now < live_until``, exactly ``record.is_live(now)``."""

    __slots__ = ("live_until", "principal", "record")

    def __init__(self, record: SessionRecord, principal: Principal | None) -> None:
        self.record = record
        self.principal = principal
        self.live_until = min(record.expires_at, record.idle_expires_at())


class SessionCache:
    def __init__(self, max_entries: int = 100_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self._max_entries = max_entries
        self._entries: OrderedDict[str, CachedSession] = OrderedDict()
        self._key_by_handle: dict[str, str] = {}
        self._invalidations = 0
        # Lookups that found / did not find an entry, for the metrics (plain integers: an
        # addition is all the warm path pays).
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> SessionRecord | None:
        entry = self.entry(key)
        return None if entry is None else entry.record

    def entry(self, key: str) -> CachedSession | None:
        """The entry for ``key`` (marked as recently used), or None."""
        entry = self._entries.get(key)
        if entry is not None:
            try:
                self._entries.move_to_end(key)
            except KeyError:
                # Dropped between the two calls by another thread (a WSGI worker reads the
                # cache while the loop thread applies the bus): a miss, not an error.
                self.misses += 1
                return None
            self.hits += 1
        else:
            self.misses += 1
        return entry

    @property
    def invalidations(self) -> int:
        """How many drops and clears happened so far: read it before awaiting a store read,
        pass it to ``put(since=...)`` after."""
        return self._invalidations

    def put(
        self,
        record: SessionRecord,
        principal: Principal | None = None,
        *,
        since: int | None = None,
    ) -> CachedSession:
        """Cache ``record`` (and the principal built from it), evicting the least recently
        used entries beyond the bound; return the new entry.

        With ``since`` (an ``invalidations`` value read before the record was fetched), the
        entry is returned but not cached if anything was dropped in the meantime: the
        record may predate a revocation that the bus delivered while the store answered,
        and caching it would outlive that revocation.

        A handle has one current key: an entry cached under an older key of the same
        session (rotated since) is dropped, so ``drop_handle`` always finds every entry.
        """
        entry = CachedSession(record, principal)
        if since is not None and since != self._invalidations:
            return entry
        key, handle = record.key, record.handle
        older_key = self._key_by_handle.get(handle)
        if older_key is not None and older_key != key:
            self._entries.pop(older_key, None)
        previous = self._entries.get(key)
        if previous is not None and previous.record.handle != handle:
            self._key_by_handle.pop(previous.record.handle, None)
        self._entries[key] = entry
        self._entries.move_to_end(key)
        self._key_by_handle[handle] = key
        while len(self._entries) > self._max_entries:
            evicted_key, evicted = self._entries.popitem(last=False)
            if self._key_by_handle.get(evicted.record.handle) == evicted_key:
                del self._key_by_handle[evicted.record.handle]
        return entry

    def drop(self, key: str) -> None:
        self._invalidations += 1
        entry = self._entries.pop(key, None)
        if entry is not None and self._key_by_handle.get(entry.record.handle) == key:
            del self._key_by_handle[entry.record.handle]

    def drop_handle(self, handle: str) -> None:
        self._invalidations += 1
        key = self._key_by_handle.pop(handle, None)
        if key is not None:
            self._entries.pop(key, None)

    def clear(self) -> None:
        self._invalidations += 1
        self._entries.clear()
        self._key_by_handle.clear()
