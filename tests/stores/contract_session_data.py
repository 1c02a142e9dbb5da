"""The ``SessionDataStore`` contract: a session's (or refresh family's) data, read and
updated by handle, key by key; the cap and the JSON rules refuse before any write; the
concurrency rule (last writer wins, per key) holds between two instances of the store; the
data lives exactly as long as its record, through key replacement and refresh rotation."""

from __future__ import annotations

import asyncio
import datetime
import math
from typing import Any

import pytest

from authstate.errors import SessionDataTooLarge
from authstate.rotation import RotationOutcome, rotate_refresh
from authstate.stores.base import SessionDataStore, Store
from tests.stores.contract_base import DAY, GRACE, HOSTILE, T0, ContractBase, family, session

CAP = 16 * 1024


class SessionDataContract(ContractBase):
    """The ``SessionDataStore`` contract."""

    async def test_store_offers_sessiondatastore(self, store: Store) -> None:
        assert isinstance(store, SessionDataStore)

    async def test_data_written_at_creation_reads_back_by_handle(self, store: Store) -> None:
        await store.create_session(session(data={"cart": [1, 2], "ü": {"n": None}}))
        assert await store.get_session_data("h-k0") == {"cart": [1, 2], "ü": {"n": None}}
        assert await store.get_session_data("unknown") is None

    async def test_update_sets_and_removes_only_the_keys_it_names(self, store: Store) -> None:
        await store.create_session(session(data={"keep": 1, "drop": 2, "change": 3}))
        after = await store.update_session_data(
            "h-k0", {"change": [4], "new": {"a": True}}, remove=["drop", "absent"], max_bytes=CAP
        )
        expected = {"keep": 1, "change": [4], "new": {"a": True}}
        assert after == expected
        assert await store.get_session_data("h-k0") == expected
        # The rest of the record is untouched, and get_session sees the new data too.
        record = await store.get_session("k0")
        assert record is not None and record.data == expected
        assert record.handle == "h-k0" and record.user_id == "u1"

    async def test_tuples_come_back_as_lists(self, store: Store) -> None:
        await store.create_session(session())
        after = await store.update_session_data("h-k0", {"t": (1, 2)}, max_bytes=CAP)
        assert after == {"t": [1, 2]}
        assert await store.get_session_data("h-k0") == {"t": [1, 2]}

    async def test_returned_data_is_a_copy(self, store: Store) -> None:
        await store.create_session(session(data={"a": [1]}))
        first = await store.get_session_data("h-k0")
        assert first is not None
        first["a"].append(2)
        assert await store.get_session_data("h-k0") == {"a": [1]}

    async def test_unknown_handle_updates_nothing(self, store: Store) -> None:
        assert await store.update_session_data("nobody", {"a": 1}, max_bytes=CAP) is None
        assert await store.get_session_data("nobody") is None

    async def test_the_cap_refuses_and_writes_nothing(self, store: Store) -> None:
        await store.create_session(session(data={"a": "x"}))
        # {"a":"x","b":"…"} compact is 17 bytes plus the value: exactly at the cap passes.
        at_cap = 100
        value = "y" * (at_cap - len('{"a":"x","b":""}'))
        assert await store.update_session_data("h-k0", {"b": value}, max_bytes=at_cap)
        with pytest.raises(SessionDataTooLarge) as refused:
            await store.update_session_data("h-k0", {"c": 1}, max_bytes=at_cap)
        assert "cap" in str(refused.value) and refused.value.status_code == 413
        assert await store.get_session_data("h-k0") == {"a": "x", "b": value}
        # Removing keys makes room again, and non-ASCII text counts in UTF-8 bytes.
        assert await store.update_session_data("h-k0", {}, remove=["b"], max_bytes=at_cap)
        with pytest.raises(SessionDataTooLarge):
            await store.update_session_data("h-k0", {"b": "é" * 45}, max_bytes=at_cap)
        assert await store.get_session_data("h-k0") == {"a": "x"}

    @pytest.mark.parametrize(
        ("value", "error"),
        [
            ({1, 2}, TypeError),
            (b"bytes", TypeError),
            (datetime.datetime(2026, 1, 1), TypeError),
            (object(), TypeError),
            ({1: "int key"}, TypeError),
            ([{"deep": {"x": frozenset()}}], TypeError),
            (math.nan, ValueError),
            (math.inf, ValueError),
            ("\ud800", ValueError),
            ({"\udfff": 1}, ValueError),
        ],
        ids=lambda v: type(v).__name__ if not isinstance(v, type) else v.__name__,
    )
    async def test_non_json_values_are_refused_before_any_write(
        self, store: Store, value: Any, error: type[Exception]
    ) -> None:
        await store.create_session(session(data={"a": 1}))
        with pytest.raises(error, match="session data"):
            await store.update_session_data("h-k0", {"ok": 2, "bad": value}, max_bytes=CAP)
        assert await store.get_session_data("h-k0") == {"a": 1}

    async def test_a_key_both_set_and_removed_is_refused(self, store: Store) -> None:
        await store.create_session(session(data={"a": 1}))
        with pytest.raises(ValueError, match="both set and removed"):
            await store.update_session_data("h-k0", {"a": 2}, remove=["a"], max_bytes=CAP)
        with pytest.raises(TypeError):
            await store.update_session_data("h-k0", {}, remove=[3], max_bytes=CAP)  # type: ignore[list-item]
        assert await store.get_session_data("h-k0") == {"a": 1}

    async def test_hostile_keys_and_values_are_plain_data(self, store: Store) -> None:
        await store.create_session(session())
        data = {text: text for text in HOSTILE}
        assert await store.update_session_data("h-k0", data, max_bytes=CAP * 4) == data
        assert await store.get_session_data("h-k0") == data
        for text in HOSTILE:
            assert await store.get_session_data(text) is None
            assert await store.update_session_data(text, {"a": 1}, max_bytes=CAP) is None

    # -- the concurrency rule: last writer wins, per key, between instances ---------------------
    async def test_concurrent_updates_of_different_keys_all_stay(
        self, store: Store, second: Store
    ) -> None:
        await store.create_session(session(data={"base": 0}))

        async def writes(on: Store, name: str) -> None:
            for i in range(15):
                await on.update_session_data("h-k0", {f"{name}{i}": i}, max_bytes=CAP)

        await asyncio.gather(writes(store, "a"), writes(second, "b"), writes(store, "c"))
        expected = {"base": 0} | {f"{n}{i}": i for n in "abc" for i in range(15)}
        assert await second.get_session_data("h-k0") == expected
        assert await store.get_session_data("h-k0") == expected

    async def test_the_same_key_keeps_the_last_write(self, store: Store, second: Store) -> None:
        await store.create_session(session())
        await store.update_session_data("h-k0", {"step": 1, "mine": "first"}, max_bytes=CAP)
        await second.update_session_data("h-k0", {"step": 2}, max_bytes=CAP)
        assert await store.get_session_data("h-k0") == {"step": 2, "mine": "first"}
        await store.update_session_data("h-k0", {}, remove=["step"], max_bytes=CAP)
        assert await second.get_session_data("h-k0") == {"mine": "first"}

    async def test_the_cap_holds_under_concurrent_updates(
        self, store: Store, second: Store
    ) -> None:
        # Each update fits alone; both together do not: exactly one is applied.
        await store.create_session(session())
        results = await asyncio.gather(
            store.update_session_data("h-k0", {"a": "x" * 60}, max_bytes=100),
            second.update_session_data("h-k0", {"b": "y" * 60}, max_bytes=100),
            return_exceptions=True,
        )
        refused = [r for r in results if isinstance(r, SessionDataTooLarge)]
        applied = [r for r in results if isinstance(r, dict)]
        assert (len(refused), len(applied)) == (1, 1)
        assert await store.get_session_data("h-k0") == applied[0]

    # -- the data lives and dies with its record ------------------------------------------------
    async def test_data_dies_with_the_session(self, store: Store, second: Store) -> None:
        await store.create_session(session("a", data={"x": 1}))
        await store.create_session(session("b", data={"x": 2}))
        await store.create_session(session("c", data={"x": 3}))
        await store.delete_session("a")
        await store.delete_session_by_handle("h-b")
        assert await second.get_session_data("h-a") is None
        assert await second.get_session_data("h-b") is None
        assert await second.update_session_data("h-a", {"x": 9}, max_bytes=CAP) is None
        await store.delete_user_sessions("u1")
        assert await second.get_session_data("h-c") is None

    async def test_purged_sessions_take_their_data(self, store: Store) -> None:
        await store.create_session(session(expires_at=T0 + 10, data={"x": 1}))
        await store.purge_expired(T0 + 20)
        assert await store.get_session_data("h-k0") is None

    async def test_data_survives_key_replacement_and_touch(self, store: Store) -> None:
        await store.create_session(session("old", idle_timeout=DAY))
        await store.update_session_data("h-old", {"cart": [1]}, max_bytes=CAP)
        await store.touch_session("old", T0 + 5)
        replaced = await store.replace_session_key("old", "new", roles=("admin",))
        assert replaced is not None and replaced.data == {"cart": [1]}
        assert await store.get_session_data("h-old") == {"cart": [1]}
        await store.update_session_data("h-old", {"cart": [1, 2]}, max_bytes=CAP)
        record = await store.get_session("new")
        assert record is not None and record.data == {"cart": [1, 2]}

    async def test_a_refresh_familys_data_survives_rotation(self, store: Store) -> None:
        await store.create_session(family("r0", handle="fam", data={"step": 1}))
        await store.update_session_data("fam", {"wizard": "page-2"}, max_bytes=CAP)
        result = await rotate_refresh(store, "r0", "r1", now=T0 + 1, grace_seconds=GRACE)
        assert result.outcome is RotationOutcome.ROTATED
        assert await store.get_session_data("fam") == {"step": 1, "wizard": "page-2"}
        await store.update_session_data("fam", {"step": 2}, max_bytes=CAP)
        result = await rotate_refresh(store, "r1", "r2", now=T0 + 2, grace_seconds=GRACE)
        assert result.outcome is RotationOutcome.ROTATED
        found = await store.find_refresh("r2")
        assert found is not None and found.data == {"step": 2, "wizard": "page-2"}
        await store.delete_session_by_handle("fam")
        assert await store.get_session_data("fam") is None
