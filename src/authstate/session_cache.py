"""A bounded in-process cache of recently used sessions, invalidated through the bus.

A hit is never trusted blindly: the caller re-checks expiry and the revocation state on
every hit, and the cache is bypassed whenever the bus is staler than the bound.
"""

from __future__ import annotations

from collections import OrderedDict

from authstate.stores.base import SessionRecord


class SessionCache:
    def __init__(self, max_entries: int = 100_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self._max_entries = max_entries
        self._entries: OrderedDict[str, SessionRecord] = OrderedDict()
        self._key_by_handle: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> SessionRecord | None:
        record = self._entries.get(key)
        if record is not None:
            self._entries.move_to_end(key)
        return record

    def put(self, record: SessionRecord) -> None:
        self._entries[record.key] = record
        self._entries.move_to_end(record.key)
        self._key_by_handle[record.handle] = record.key
        while len(self._entries) > self._max_entries:
            _, evicted = self._entries.popitem(last=False)
            self._key_by_handle.pop(evicted.handle, None)

    def drop(self, key: str) -> None:
        record = self._entries.pop(key, None)
        if record is not None:
            self._key_by_handle.pop(record.handle, None)

    def drop_handle(self, handle: str) -> None:
        key = self._key_by_handle.pop(handle, None)
        if key is not None:
            self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
        self._key_by_handle.clear()
