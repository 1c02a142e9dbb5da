"""Nodes that start together on an empty store end up signing with one and the same key."""

from __future__ import annotations

import asyncio

import pytest

from authstate._time import FrozenClock
from authstate.crypto.sealing import Sealer
from authstate.key_storage import KeyManager
from authstate.stores.base import StoredKey
from authstate.stores.memory import MemoryStore

pytestmark = pytest.mark.anyio


class EveryoneSeesAnEmptyStore(MemoryStore):
    """The real memory store, except that the first key read of each of ``nodes`` callers
    waits until all of them have read: every node sees no key, as in a simultaneous start."""

    def __init__(self, nodes: int) -> None:
        super().__init__()
        self._waiting = nodes
        self._all_read = asyncio.Event()

    async def load_keys(self) -> list[StoredKey]:
        if self._waiting > 0:
            keys = await super().load_keys()
            self._waiting -= 1
            if self._waiting == 0:
                self._all_read.set()
            await self._all_read.wait()
            return keys
        return await super().load_keys()


async def test_simultaneous_first_starts_agree_on_one_signing_key() -> None:
    store = EveryoneSeesAnEmptyStore(nodes=3)
    await store.open()
    clock = FrozenClock()
    managers = [
        KeyManager(
            store,
            Sealer(b"s" * 32),
            clock,
            algorithm="EdDSA",
            verify_grace_seconds=930,
            first_kid="first-key-kid-0000000A",
        )
        for _ in range(3)
    ]
    rings = await asyncio.gather(*(manager.load() for manager in managers))
    assert {ring.signing_key().kid for ring in rings} == {"first-key-kid-0000000A"}
    assert len(await store.load_keys()) == 1


async def test_without_a_shared_first_kid_the_race_would_split_the_nodes() -> None:
    """The reason for first_kid: random kids leave each node signing with its own key."""
    store = EveryoneSeesAnEmptyStore(nodes=2)
    await store.open()
    managers = [
        KeyManager(
            store, Sealer(b"s" * 32), FrozenClock(), algorithm="EdDSA", verify_grace_seconds=930
        )
        for _ in range(2)
    ]
    await asyncio.gather(*(manager.load() for manager in managers))
    assert len(await store.load_keys()) == 2
