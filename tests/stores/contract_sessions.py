"""The ``SessionStore`` contract: sessions, refresh rotation over ``find_refresh`` and
``swap_refresh_key`` (``authstate.rotation``), its race rules, and purge of sessions."""

from __future__ import annotations

import asyncio

import pytest

from authstate.errors import Conflict
from authstate.rotation import RotationOutcome, rotate_refresh
from authstate.stores.base import (
    SessionStore,
    Store,
)
from tests.stores.contract_base import (
    DAY,
    GRACE,
    T0,
    ContractBase,
    by_handle,
    family,
    session,
)


class SessionContract(ContractBase):
    """The ``SessionStore`` contract."""

    async def test_store_offers_sessionstore(self, store: Store) -> None:
        assert isinstance(store, SessionStore)

    async def test_created_session_reads_back_by_key_and_handle(self, store: Store) -> None:
        record = session(
            roles=("admin", "staff"),
            user_agent="Mozilla/5.0",
            ip="203.0.113.9",
            data={"cart": [1, 2], "nested": {"ü": True}, "none": None},
            generation=3,
        )
        await store.create_session(record)
        assert await store.get_session("k0") == record
        assert await by_handle(store, "h-k0") == record
        assert await store.get_session("unknown") is None
        assert await by_handle(store, "unknown") is None

    async def test_returned_data_is_a_copy(self, store: Store) -> None:
        data = {"a": [1]}
        await store.create_session(session(data=data))
        data["a"].append(2)
        fetched = await store.get_session("k0")
        assert fetched is not None and fetched.data == {"a": [1]}

    async def test_duplicate_key_or_handle_is_a_conflict(self, store: Store) -> None:
        await store.create_session(session("k0", handle="h0"))
        with pytest.raises(Conflict):
            await store.create_session(session("k0", handle="other"))
        with pytest.raises(Conflict):
            await store.create_session(session("other", handle="h0"))
        assert len(await store.list_sessions("u1")) == 1

    async def test_touch_slides_last_seen_and_never_moves_it_back(self, store: Store) -> None:
        await store.create_session(session(idle_timeout=3600))
        await store.touch_session("k0", T0 + 100)
        await store.touch_session("k0", T0 + 50)  # a slower node's older write
        await store.touch_session("unknown", T0 + 100)
        fetched = await store.get_session("k0")
        assert fetched is not None and fetched.last_seen_at == T0 + 100
        assert fetched.idle_expires_at() == T0 + 3700

    async def test_list_is_per_user_newest_first_with_kind_filter(self, store: Store) -> None:
        await store.create_session(session("a", created_at=T0))
        await store.create_session(family("b", created_at=T0 + 2))
        await store.create_session(session("c", created_at=T0 + 1))
        await store.create_session(session("d", user_id="u2", created_at=T0 + 3))
        assert [r.key for r in await store.list_sessions("u1")] == ["b", "c", "a"]
        assert [r.key for r in await store.list_sessions("u1", kind="session")] == ["c", "a"]
        assert [r.key for r in await store.list_sessions("u1", kind="refresh")] == ["b"]
        assert await store.list_sessions("nobody") == []

    async def test_delete_returns_the_record_once(self, store: Store) -> None:
        await store.create_session(session())
        deleted = await store.delete_session("k0")
        assert deleted is not None and deleted.handle == "h-k0"
        assert await store.get_session("k0") is None
        assert await by_handle(store, "h-k0") is None
        assert await store.delete_session("k0") is None

    async def test_delete_by_handle_checks_the_owner(self, store: Store) -> None:
        await store.create_session(session("k0", user_id="alice"))
        assert await store.delete_session_by_handle("h-k0", user_id="mallory") is None
        assert await store.get_session("k0") is not None
        deleted = await store.delete_session_by_handle("h-k0", user_id="alice")
        assert deleted is not None and deleted.key == "k0"
        assert await store.get_session("k0") is None
        assert await store.delete_session_by_handle("h-k0") is None

    async def test_delete_by_handle_without_owner(self, store: Store) -> None:
        await store.create_session(session())
        assert await store.delete_session_by_handle("h-k0") is not None
        assert await by_handle(store, "h-k0") is None

    async def test_delete_user_sessions_spares_the_excepted_and_other_users(
        self, store: Store
    ) -> None:
        for key in ("a", "b", "c"):
            await store.create_session(session(key))
        await store.create_session(session("x", user_id="u2"))
        deleted = await store.delete_user_sessions("u1", except_handle="h-b")
        assert sorted(r.key for r in deleted) == ["a", "c"]
        assert [r.key for r in await store.list_sessions("u1")] == ["b"]
        assert await store.get_session("x") is not None
        assert sorted(r.key for r in await store.delete_user_sessions("u1")) == ["b"]
        assert await store.delete_user_sessions("u1") == []

    async def test_replace_key_moves_the_session_and_keeps_its_handle(self, store: Store) -> None:
        await store.create_session(session("old", roles=("user",), data={"x": 1}))
        updated = await store.replace_session_key("old", "new", roles=("user", "admin"))
        assert updated is not None
        assert (updated.key, updated.handle, updated.roles) == ("new", "h-old", ("user", "admin"))
        assert await store.get_session("old") is None
        assert await store.get_session("new") == updated
        assert updated.data == {"x": 1}
        assert await by_handle(store, "h-old") == updated

    async def test_replace_key_without_roles_keeps_them(self, store: Store) -> None:
        await store.create_session(session("old", roles=("user",)))
        updated = await store.replace_session_key("old", "new")
        assert updated is not None and updated.roles == ("user",)

    async def test_replace_unknown_key_is_none(self, store: Store) -> None:
        assert await store.replace_session_key("missing", "new") is None
        assert await store.get_session("new") is None

    async def test_replace_onto_a_taken_key_is_a_conflict(self, store: Store) -> None:
        await store.create_session(session("a"))
        await store.create_session(session("b"))
        with pytest.raises(Conflict):
            await store.replace_session_key("a", "b")
        assert await store.get_session("a") is not None

    # -- refresh rotation ---------------------------------------------------------------------
    async def test_rotation_moves_the_family_to_the_successor(self, store: Store) -> None:
        await store.create_session(family("r0"))
        result = await rotate_refresh(store, "r0", "r1", now=T0 + 60, grace_seconds=GRACE)
        assert result.outcome is RotationOutcome.ROTATED
        record = result.record
        assert record is not None
        assert (record.key, record.previous_key, record.handle) == ("r1", "r0", "h-r0")
        assert record.rotated_at == T0 + 60 and record.last_seen_at == T0 + 60
        assert await store.get_session("r0") is None
        assert await store.get_session("r1") == record

    async def test_retry_within_grace_gets_the_same_successor(self, store: Store) -> None:
        await store.create_session(family("r0"))
        await rotate_refresh(store, "r0", "r1", now=T0, grace_seconds=GRACE)
        result = await rotate_refresh(store, "r0", "r1", now=T0 + GRACE, grace_seconds=GRACE)
        assert result.outcome is RotationOutcome.GRACE
        assert result.record is not None and result.record.key == "r1"
        assert await store.get_session("r1") is not None

    async def test_reuse_after_grace_revokes_the_family(self, store: Store) -> None:
        await store.create_session(family("r0"))
        await rotate_refresh(store, "r0", "r1", now=T0, grace_seconds=GRACE)
        result = await rotate_refresh(store, "r0", "r1", now=T0 + GRACE + 1, grace_seconds=GRACE)
        assert result.outcome is RotationOutcome.REUSED
        assert result.record is not None and result.record.handle == "h-r0"
        assert await store.get_session("r1") is None
        assert await by_handle(store, "h-r0") is None
        # The thief's successor is dead too.
        again = await rotate_refresh(store, "r1", "r2", now=T0 + GRACE + 2, grace_seconds=GRACE)
        assert again.outcome is RotationOutcome.UNKNOWN

    async def test_reuse_of_an_older_key_revokes_even_within_grace(self, store: Store) -> None:
        await store.create_session(family("r0"))
        await rotate_refresh(store, "r0", "r1", now=T0, grace_seconds=GRACE)
        await rotate_refresh(store, "r1", "r2", now=T0 + 1, grace_seconds=GRACE)
        result = await rotate_refresh(store, "r0", "r1", now=T0 + 2, grace_seconds=GRACE)
        assert result.outcome is RotationOutcome.REUSED
        assert await store.get_session("r2") is None

    async def test_previous_key_with_another_successor_is_reuse(self, store: Store) -> None:
        await store.create_session(family("r0"))
        await rotate_refresh(store, "r0", "r1", now=T0, grace_seconds=GRACE)
        result = await rotate_refresh(store, "r0", "forged", now=T0 + 1, grace_seconds=GRACE)
        assert result.outcome is RotationOutcome.REUSED
        assert await store.get_session("r1") is None

    async def test_unknown_expired_or_session_keys_do_not_rotate(self, store: Store) -> None:
        await store.create_session(family("old", expires_at=T0 + 100))
        await store.create_session(family("idle", idle_timeout=60))
        await store.create_session(session("plain"))
        for key, now in (("nope", T0), ("old", T0 + 100), ("idle", T0 + 60), ("plain", T0)):
            result = await rotate_refresh(store, key, key + "-next", now=now, grace_seconds=GRACE)
            assert result.outcome is RotationOutcome.UNKNOWN, key
            assert result.record is None
            assert await store.get_session(key + "-next") is None

    async def test_rotating_after_logout_never_resurrects(self, store: Store) -> None:
        await store.create_session(family("r0"))
        await rotate_refresh(store, "r0", "r1", now=T0, grace_seconds=GRACE)
        await store.delete_session_by_handle("h-r0")
        for presented, successor in (("r0", "r1"), ("r1", "r2")):
            result = await rotate_refresh(
                store, presented, successor, now=T0 + 1, grace_seconds=GRACE
            )
            assert result.outcome in (RotationOutcome.UNKNOWN, RotationOutcome.REUSED)
        for key in ("r0", "r1", "r2"):
            assert await store.get_session(key) is None
        assert await by_handle(store, "h-r0") is None

    async def test_find_refresh_finds_the_family_by_current_or_consumed_key(
        self, store: Store
    ) -> None:
        await store.create_session(family("r0"))
        await rotate_refresh(store, "r0", "r1", now=T0, grace_seconds=GRACE)
        for key in ("r0", "r1"):
            found = await store.find_refresh(key)
            assert found is not None and (found.handle, found.key) == ("h-r0", "r1"), key
        assert await store.find_refresh("nope") is None

    async def test_swap_is_a_compare_and_swap(self, store: Store) -> None:
        await store.create_session(family("r0"))
        found = await store.find_refresh("r0")
        assert found is not None
        swapped = await store.swap_refresh_key(found, "r1", now=T0 + 5)
        assert swapped is not None and (swapped.key, swapped.previous_key) == ("r1", "r0")
        assert swapped.rotated_at == T0 + 5 and swapped.last_seen_at == T0 + 5
        # The same (now stale) family again: the key moved on, so nothing is written.
        assert await store.swap_refresh_key(found, "r2", now=T0 + 6) is None
        assert await store.get_session("r2") is None
        assert await store.get_session("r1") == swapped

    async def test_swap_never_recreates_a_deleted_family(self, store: Store) -> None:
        await store.create_session(family("r0"))
        found = await store.find_refresh("r0")
        assert found is not None
        await store.delete_session_by_handle("h-r0")
        assert await store.swap_refresh_key(found, "r1", now=T0) is None
        assert await store.get_session("r1") is None
        assert await store.find_refresh("r0") is None
        assert await store.list_sessions("u1") == []

    async def test_concurrent_rotations_yield_one_rotated_and_one_grace(
        self, store: Store, second: Store
    ) -> None:
        for i in range(10):
            await store.create_session(family(f"r{i}"))
            results = await asyncio.gather(
                rotate_refresh(store, f"r{i}", f"s{i}", now=T0, grace_seconds=GRACE),
                rotate_refresh(second, f"r{i}", f"s{i}", now=T0, grace_seconds=GRACE),
            )
            outcomes = sorted(r.outcome.value for r in results)
            assert outcomes == ["grace", "rotated"]
            assert all(r.record is not None and r.record.key == f"s{i}" for r in results)
            assert await store.get_session(f"s{i}") is not None

    async def test_logout_racing_rotation_never_resurrects_the_family(
        self, store: Store, second: Store
    ) -> None:
        for i in range(10):
            await store.create_session(family(f"r{i}"))
            rotate = rotate_refresh(second, f"r{i}", f"s{i}", now=T0, grace_seconds=GRACE)
            logout = store.delete_session_by_handle(f"h-r{i}", user_id="u1")
            await asyncio.gather(*((rotate, logout) if i % 2 else (logout, rotate)))
            assert await store.get_session(f"r{i}") is None
            assert await store.get_session(f"s{i}") is None
            assert await second.get_session(f"s{i}") is None
            assert await by_handle(store, f"h-r{i}") is None

    async def test_touching_a_session_the_store_does_not_have_says_so(self, store: Store) -> None:
        await store.create_session(session("k0"))
        assert await store.touch_session("k0", T0 + 100) is True
        assert await store.touch_session("k0", T0 + 50) is True  # older write: still there
        assert await store.touch_session("gone", T0 + 100) is False
        await store.delete_session("k0")
        assert await store.touch_session("k0", T0 + 200) is False

    # -- purge --------------------------------------------------------------------------------
    async def test_purge_removes_expired_sessions_and_keeps_live_ones(self, store: Store) -> None:
        now = T0 + 1000
        await store.create_session(session("absolute", expires_at=now - 1))
        await store.create_session(session("idle", idle_timeout=100, last_seen_at=now - 101))
        await store.create_session(session("live", idle_timeout=100, last_seen_at=now - 50))
        await store.create_session(session("forever", expires_at=now + DAY))
        assert await store.purge_expired(now) >= 2
        assert await store.get_session("absolute") is None
        assert await store.get_session("idle") is None
        assert await store.get_session("live") is not None
        assert await store.get_session("forever") is not None

    async def test_purge_forgets_consumed_keys_with_their_family(self, store: Store) -> None:
        await store.create_session(family("r0", expires_at=T0 + 100))
        await rotate_refresh(store, "r0", "r1", now=T0, grace_seconds=GRACE)
        await store.purge_expired(T0 + 100)
        result = await rotate_refresh(store, "r0", "r1", now=T0 + 101, grace_seconds=GRACE)
        assert result.outcome is RotationOutcome.UNKNOWN

    async def test_auth_time_and_remember_survive_touch_key_change_and_rotation(
        self, store: Store
    ) -> None:
        # Step-up and remember-me live in the record: every later write keeps them.
        await store.create_session(
            session("s0", idle_timeout=3600, auth_time=T0 + 5, remember=False)
        )
        await store.create_session(family("r0", auth_time=T0 + 7, remember=False))
        await store.touch_session("s0", T0 + 60)
        moved = await store.replace_session_key("s0", "s1")
        assert moved is not None and (moved.auth_time, moved.remember) == (T0 + 5, False)
        fetched = await store.get_session("s1")
        assert fetched is not None and (fetched.auth_time, fetched.remember) == (T0 + 5, False)
        found = await store.find_refresh("r0")
        assert found is not None
        rotated = await store.swap_refresh_key(found, "r1", now=T0 + 60)
        assert rotated is not None and (rotated.auth_time, rotated.remember) == (T0 + 7, False)
        listed = {r.key: r for r in await store.list_sessions("u1")}
        assert (listed["r1"].auth_time, listed["r1"].remember) == (T0 + 7, False)

    async def test_a_record_without_auth_time_was_authenticated_at_creation(
        self, store: Store
    ) -> None:
        await store.create_session(session(created_at=T0 + 3))
        fetched = await store.get_session("k0")
        assert fetched is not None
        assert (fetched.auth_time, fetched.remember) == (0.0, True)
        assert fetched.authenticated_at() == T0 + 3
