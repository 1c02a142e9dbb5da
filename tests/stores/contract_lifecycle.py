"""The ``Lifecycle`` contract: open, close, ping (``purge_expired`` per concern in each suite)."""

from __future__ import annotations

import pytest

from authstate.errors import StoreUnavailable
from authstate.stores.base import (
    Lifecycle,
    Store,
)
from tests.stores.contract_base import (
    ContractBase,
)


class LifecycleContract(ContractBase):
    """The ``Lifecycle`` contract."""

    async def test_store_offers_lifecycle(self, store: Store) -> None:
        assert isinstance(store, Lifecycle)
        assert isinstance(store.url_scheme, str) and store.url_scheme

    async def test_open_twice_is_harmless_and_ping_answers(self, store: Store) -> None:
        await store.open()
        await store.ping()

    async def test_a_closed_store_fails_ping(self, store: Store) -> None:
        await store.close()
        with pytest.raises(StoreUnavailable):
            await store.ping()
