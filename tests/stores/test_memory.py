"""The memory store passes the store contract (its second instance is the same object)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from authstate._time import FrozenClock
from authstate.stores.base import Change, ChangeKind, Store
from authstate.stores.memory import MemoryStore
from tests.stores.contract import StoreContract, session


class TestMemoryStore(StoreContract):
    @pytest.fixture
    async def store(self) -> AsyncIterator[Store]:
        store = MemoryStore(clock=FrozenClock())
        await store.open()
        yield store
        await store.close()


def test_bus_is_always_healthy_on_the_store_clock() -> None:
    clock = FrozenClock()
    store = MemoryStore(clock=clock)
    clock.advance(5)
    assert store.bus_healthy_since() == clock.monotonic()


@pytest.mark.anyio
async def test_listeners_are_called_before_publish_returns() -> None:
    store = MemoryStore()
    seen: list[int] = []
    await store.listen(lambda change: seen.append(change.seq))
    change = await store.publish(Change(ChangeKind.JTI, "j", until=0.0))
    assert seen == [change.seq]


@pytest.mark.anyio
async def test_a_failing_listener_does_not_stop_the_others() -> None:
    store = MemoryStore()
    seen: list[str] = []

    def broken(change: Change) -> None:
        raise RuntimeError("boom")

    await store.listen(broken)
    await store.listen(lambda change: seen.append(change.value))
    await store.publish(Change(ChangeKind.JTI, "j", until=0.0))
    assert seen == ["j"]


@pytest.mark.anyio
async def test_data_survives_close_and_reopen() -> None:
    store = MemoryStore()
    await store.open()
    await store.create_session(session())
    await store.close()
    await store.open()
    assert await store.get_session("k0") is not None
