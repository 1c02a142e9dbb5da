"""The SQLite store passes the store contract, with a second connection on the same file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from authstate.stores.base import Store
from authstate.stores.sqlite import SQLiteStore
from tests.stores.contract import StoreContract

POLL = 0.05


class TestSQLiteStore(StoreContract):
    propagation_bound = 1.0

    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[Store]:
        store = SQLiteStore(f"sqlite:///{tmp_path}/auth.db", poll_interval=POLL)
        await store.open()
        yield store
        await store.close()

    async def second_store(self, store: Store) -> Store:
        assert isinstance(store, SQLiteStore)
        other = SQLiteStore(store.url, poll_interval=POLL)
        await other.open()
        return other
