"""The store contract every backend passes (race rules included): one suite per protocol.

A backend's test module subclasses ``StoreContract`` and provides a ``store`` fixture
yielding an opened store on an empty backend:

    class TestMemoryStore(StoreContract):
        @pytest.fixture
        async def store(self) -> AsyncIterator[Store]:
            store = MemoryStore()
            await store.open()
            yield store
            await store.close()

and overrides ``second_store`` to return another instance on the same backend (another
connection or node) for the cross-instance tests; the default is the same instance. The
fixture ``second`` closes what ``second_store`` returned. ``delivery_timeout`` is how long
a cross-instance test waits for a change: a hang guard, never a latency claim (the suite
asserts no wall time; ``authstate bench`` measures propagation).

Data loss (``DataLossContract``): ``snapshot``/``restore`` put the backend's data back as it
was (an older backup, a replica that was behind) and ``empty`` wipes it (a server restarted
without persistence), both behind the store's back, as an operator would. Backends that can
lose data under a live node include it and provide the hooks; the memory store does not.

The suites: ``LifecycleContract`` (``contract_lifecycle``), ``SessionContract``
(``contract_sessions``), ``SessionDataContract`` (``contract_session_data``),
``ChangeBusContract`` and ``GenerationsContract`` (``contract_bus``),
``KeyContract``, ``UserContract`` and ``ThrottleContract`` (``contract_accounts``). A store
that offers only some protocols subclasses only their suites; ``StoreContract`` is all of
them plus the whole-store tests below (hostile input across every protocol).

Times are explicit Unix seconds around ``T0``; nothing here sleeps except the bus tests.
"""

from __future__ import annotations

import pytest

from authstate.rotation import RotationOutcome, rotate_refresh
from authstate.stores.base import (
    Store,
    UserRecord,
)
from tests.stores.contract_accounts import KeyContract, ThrottleContract, UserContract
from tests.stores.contract_base import (
    DAY,
    GRACE,
    HOSTILE,
    T0,
    ContractBase,
    by_handle,
    eventually,
    family,
    session,
)
from tests.stores.contract_bus import ChangeBusContract, DataLossContract, GenerationsContract
from tests.stores.contract_grants import GrantsContract
from tests.stores.contract_lifecycle import LifecycleContract
from tests.stores.contract_session_data import SessionDataContract
from tests.stores.contract_sessions import SessionContract

__all__ = [
    "DAY",
    "GRACE",
    "HOSTILE",
    "T0",
    "ContractBase",
    "DataLossContract",
    "StoreContract",
    "by_handle",
    "eventually",
    "family",
    "session",
]


class StoreContract(
    LifecycleContract,
    SessionContract,
    SessionDataContract,
    ChangeBusContract,
    GenerationsContract,
    KeyContract,
    UserContract,
    ThrottleContract,
    GrantsContract,
):
    """Every suite, for a store that offers every protocol (the built-in ones do)."""

    async def test_store_satisfies_the_protocol(self, store: Store) -> None:
        assert isinstance(store, Store)
        assert isinstance(store.url_scheme, str) and store.url_scheme

    @pytest.mark.parametrize("text", HOSTILE, ids=lambda t: repr(t[:12]))
    async def test_hostile_strings_are_plain_data(self, store: Store, text: str) -> None:
        await store.create_session(session("plain", handle="plain-h", user_id="plain-u"))
        record = session(text, handle=text + "h", user_id=text, user_agent=text, data={text: text})
        await store.create_session(record)
        assert await store.get_session(text) == record
        assert await by_handle(store, text + "h", user_id=text) == record
        assert [r.key for r in await store.list_sessions(text)] == [text]
        # No pattern semantics: a wildcard-looking value matches only itself.
        assert await store.get_session(text[:-1] or "x") is None
        assert await store.delete_session_by_handle("plain-h", user_id=text) is None
        await store.record_failure(text, now=T0, window=60)
        assert await store.count_failures(text, now=T0, window=60) == 1
        await store.create_user(UserRecord(text, text, text))
        assert await store.get_user_by_name(text) == UserRecord(text, text, text)
        assert await store.delete_user_sessions(text) == [record]
        assert await store.get_session("plain") is not None

    async def test_text_that_is_not_unicode_finds_nothing(self, store: Store) -> None:
        lone = "\ud800"  # a JSON body can carry a lone surrogate escape
        assert await store.get_session(lone) is None
        assert await store.delete_session_by_handle(lone, user_id=lone) is None
        assert await store.get_user_by_name(lone) is None
        assert await store.count_failures(lone, now=T0, window=60) == 0
        result = await rotate_refresh(store, lone, "x", now=T0, grace_seconds=GRACE)
        assert result.outcome is RotationOutcome.UNKNOWN
