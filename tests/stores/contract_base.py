"""What every store contract suite shares: records to store, helpers and ``ContractBase``,
the fixtures a backend's test class provides (see ``contract``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from authstate.stores.base import (
    SessionRecord,
    Store,
)

T0 = 1_800_000_000.0
DAY = 86_400.0
GRACE = 10.0
HOSTILE = [
    "'; DROP TABLE sessions; --",
    '"quoted"',
    "%",
    "_",
    "*",
    "?",
    "[a-z]*",
    "\\",
    "$1",
    "{}",
    "a\x00b",
    "\x00",
    "\u2028line\u2029",
    "ünïcødé 🔑",
    "x" * 10_000,
]


def session(
    key: str = "k0",
    *,
    handle: str | None = None,
    user_id: str = "u1",
    kind: str = "session",
    created_at: float = T0,
    expires_at: float | None = None,
    idle_timeout: float = 0.0,
    **fields: Any,
) -> SessionRecord:
    return SessionRecord(
        key=key,
        handle=handle if handle is not None else f"h-{key}",
        user_id=user_id,
        kind=kind,
        created_at=created_at,
        last_seen_at=fields.pop("last_seen_at", created_at),
        expires_at=expires_at if expires_at is not None else created_at + 7 * DAY,
        idle_timeout=idle_timeout,
        **fields,
    )


def family(key: str = "r0", **fields: Any) -> SessionRecord:
    return session(key, kind="refresh", **fields)


async def by_handle(store: Store, handle: str, user_id: str = "u1") -> SessionRecord | None:
    """The user's record with ``handle`` (the store looks records up by key or by user)."""
    return next((r for r in await store.list_sessions(user_id) if r.handle == handle), None)


async def eventually(condition: Callable[[], bool], within: float) -> None:
    """Wait (real time) until ``condition()`` holds; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {within} s")
        await asyncio.sleep(0.01)


class ContractBase:
    """The fixtures every suite uses; a backend's test class provides ``store``."""

    pytestmark = pytest.mark.anyio
    # How long a cross-instance test waits for a change before it fails: a hang guard, not a
    # latency claim (the latency is the revocation table of `authstate bench`).
    delivery_timeout = 30.0

    @pytest.fixture
    async def store(self) -> AsyncIterator[Store]:
        raise NotImplementedError("a backend test class provides the store fixture")
        yield  # pragma: no cover

    async def second_store(self, store: Store) -> Store:
        """Another opened instance on the same backend (the same one when there is no other)."""
        return store

    @pytest.fixture
    async def second(self, store: Store) -> AsyncIterator[Store]:
        other = await self.second_store(store)
        yield other
        if other is not store:
            await other.close()
