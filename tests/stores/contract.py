"""The one store contract every backend passes (race rules included).

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
fixture ``second`` closes what ``second_store`` returned. ``propagation_bound`` is the
longest a published change may take to reach another instance's listener.

Data loss: ``snapshot``/``restore`` put the backend's data back as it was (an older backup,
a replica that was behind) and ``empty`` wipes it (a server restarted without persistence),
both behind the store's back, as an operator would. A backend that cannot lose data under
a live node (memory) skips those tests.

Times are explicit Unix seconds around ``T0``; nothing here sleeps except the bus tests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import pytest

from authstate.errors import Conflict, StoreUnavailable
from authstate.rotation import RotationOutcome, rotate_refresh
from authstate.stores.base import (
    LATEST,
    Change,
    ChangeKind,
    SessionRecord,
    Store,
    StoredKey,
    UserRecord,
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


class StoreContract:
    pytestmark = pytest.mark.anyio
    propagation_bound = 2.0  # seconds for a change to reach another instance's listener

    @pytest.fixture
    async def store(self) -> AsyncIterator[Store]:
        raise NotImplementedError("a backend test class provides the store fixture")
        yield  # pragma: no cover

    async def second_store(self, store: Store) -> Store:
        """Another opened instance on the same backend (the same one when there is no other)."""
        return store

    async def snapshot(self, store: Store) -> Any:
        """A copy of the backend's data now, for ``restore``."""
        pytest.skip("this store cannot lose data while a node runs on it")

    async def restore(self, store: Store, copy: Any) -> None:
        """Put ``copy`` back over the backend's data (an operator restoring a backup)."""
        pytest.skip("this store cannot lose data while a node runs on it")

    async def empty(self, store: Store) -> None:
        """Lose every piece of the backend's data (a server restarted without persistence)."""
        pytest.skip("this store cannot lose data while a node runs on it")

    @pytest.fixture
    async def second(self, store: Store) -> AsyncIterator[Store]:
        other = await self.second_store(store)
        yield other
        if other is not store:
            await other.close()

    # -- lifecycle ----------------------------------------------------------------------------
    async def test_store_satisfies_the_protocol(self, store: Store) -> None:
        assert isinstance(store, Store)
        assert isinstance(store.url_scheme, str) and store.url_scheme

    async def test_open_twice_is_harmless_and_ping_answers(self, store: Store) -> None:
        await store.open()
        await store.ping()

    async def test_a_closed_store_fails_ping(self, store: Store) -> None:
        await store.close()
        with pytest.raises(StoreUnavailable):
            await store.ping()

    # -- sessions -----------------------------------------------------------------------------
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

    async def test_purge_drops_stale_changes_and_seq_keeps_growing(self, store: Store) -> None:
        old = await store.publish(Change(ChangeKind.JTI, "old", until=T0 - 1))
        live = await store.publish(Change(ChangeKind.JTI, "live", until=T0 + 100))
        assert await store.purge_expired(T0) >= 1
        assert [c.value for c in await store.changes_since(0)] == ["live"]
        later = await store.publish(Change(ChangeKind.SID, "later", until=T0 - 1))
        await store.purge_expired(T0)
        newest = await store.publish(Change(ChangeKind.SID, "newest", until=T0 + 100))
        assert old.seq < live.seq < later.seq < newest.seq
        _, seq = await store.active_revocations(T0)
        assert seq == newest.seq

    async def test_purge_forgets_old_failures(self, store: Store) -> None:
        await store.record_failure("b", now=T0, window=60)
        assert await store.purge_expired(T0 + 61) >= 1
        assert await store.count_failures("b", now=T0 + 61, window=3600) == 0

    # -- change log and bus -------------------------------------------------------------------
    async def test_publish_assigns_increasing_seq(self, store: Store) -> None:
        first = await store.publish(Change(ChangeKind.JTI, "j1", until=T0 + 60))
        later = await store.publish(Change(ChangeKind.USER, "u1", until=T0 + 60, generation=2))
        assert 0 < first.seq < later.seq
        assert later == Change(ChangeKind.USER, "u1", T0 + 60, 2, later.seq)

    async def test_changes_since_returns_later_changes_in_order(self, store: Store) -> None:
        published = [
            await store.publish(Change(kind, f"v{i}", until=T0 + 60, generation=i))
            for i, kind in enumerate(ChangeKind)
        ]
        assert await store.changes_since(0) == published
        assert await store.changes_since(published[1].seq) == published[2:]
        assert await store.changes_since(published[-1].seq) == []

    async def test_active_revocations_are_the_live_jti_sid_user_changes(self, store: Store) -> None:
        assert await store.active_revocations(T0) == ([], 0)
        jti = await store.publish(Change(ChangeKind.JTI, "j", until=T0 + 60))
        await store.publish(Change(ChangeKind.SID, "expired", until=T0 - 1))
        sid = await store.publish(Change(ChangeKind.SID, "s", until=T0 + 60))
        user = await store.publish(Change(ChangeKind.USER, "u", until=T0 + 60, generation=4))
        await store.publish(Change(ChangeKind.SESSION, "key", until=T0 + 60))
        keys = await store.publish(Change(ChangeKind.KEYS, "", until=T0 + 60))
        active, seq = await store.active_revocations(T0)
        assert active == [jti, sid, user]
        assert seq == keys.seq

    async def test_listener_receives_local_changes(self, store: Store) -> None:
        received: list[Change] = []
        await store.listen(received.append)
        change = await store.publish(Change(ChangeKind.SID, "s", until=T0 + 60))
        await eventually(lambda: change in received, self.propagation_bound)
        assert store.bus_healthy_since() is not None

    async def test_listener_on_another_instance_receives_every_change(
        self, store: Store, second: Store
    ) -> None:
        received: list[Change] = []
        await second.listen(received.append)
        published = [
            await store.publish(Change(ChangeKind.JTI, f"j{i}", until=T0 + 60)) for i in range(5)
        ]
        started = time.monotonic()
        # Wait past the bound so that the assertion below, not the wait, judges it.
        await eventually(lambda: all(c in received for c in published), 10.0)
        took = time.monotonic() - started
        assert took <= self.propagation_bound, f"took {took:.3f} s"
        # Duplicates are tolerated; changes other than these are not.
        assert {c.seq for c in received} == {c.seq for c in published}

    async def test_the_log_has_one_epoch_for_every_instance_and_reports_its_head(
        self, store: Store, second: Store
    ) -> None:
        empty = await store.read_log(0)
        assert empty.epoch and empty.head == 0 and empty.changes == []
        published = [
            await store.publish(Change(ChangeKind.JTI, f"j{i}", until=T0 + 60)) for i in range(3)
        ]
        read = await second.read_log(published[0].seq)
        assert (read.epoch, read.head, read.changes) == (
            empty.epoch,
            published[-1].seq,
            published[1:],
        )
        assert (await store.read_log(LATEST)).changes == []

    async def test_touching_a_session_the_store_does_not_have_says_so(self, store: Store) -> None:
        await store.create_session(session("k0"))
        assert await store.touch_session("k0", T0 + 100) is True
        assert await store.touch_session("k0", T0 + 50) is True  # older write: still there
        assert await store.touch_session("gone", T0 + 100) is False
        await store.delete_session("k0")
        assert await store.touch_session("k0", T0 + 200) is False

    async def _follow(self, second: Store) -> tuple[list[Change], list[float | None]]:
        """Listen on ``second``; return what it receives and, per reconcile, the bus health
        seen while reconciling."""
        received: list[Change] = []
        health_while_reconciling: list[float | None] = []

        async def reconcile() -> None:
            health_while_reconciling.append(second.bus_healthy_since())

        await second.listen(received.append, reconcile=reconcile)
        return received, health_while_reconciling

    async def _after_loss_the_listener_follows_the_new_log(
        self, store: Store, second: Store, received: list[Change], reconciles: list[float | None]
    ) -> None:
        # The first change after the loss reuses a seq the listener has passed: before the
        # epoch check it was dropped as already delivered, and so was every later one.
        reused = await store.publish(Change(ChangeKind.SID, "after-loss", until=T0 + 60))
        await eventually(lambda: len(reconciles) == 1, self.propagation_bound + 2)
        assert reconciles == [None]  # the bus did not claim health while reconciling
        later = await store.publish(Change(ChangeKind.SID, "later", until=T0 + 60))
        await eventually(lambda: later in received, self.propagation_bound + 2)
        await eventually(lambda: second.bus_healthy_since() is not None, self.propagation_bound + 2)
        assert reused.seq < later.seq
        assert len(reconciles) == 1

    async def test_a_listener_follows_the_log_after_an_older_copy_is_restored(
        self, store: Store, second: Store
    ) -> None:
        received, reconciles = await self._follow(second)
        await store.publish(Change(ChangeKind.JTI, "before", until=T0 + 60))
        copy = await self.snapshot(store)
        newer = [
            await store.publish(Change(ChangeKind.JTI, f"lost{i}", until=T0 + 60)) for i in range(3)
        ]
        await eventually(lambda: all(c in received for c in newer), self.propagation_bound)
        await self.restore(store, copy)
        assert (await store.read_log(LATEST)).head < newer[-1].seq
        await self._after_loss_the_listener_follows_the_new_log(store, second, received, reconciles)

    async def test_a_listener_follows_a_new_log_after_the_store_lost_everything(
        self, store: Store, second: Store
    ) -> None:
        received, reconciles = await self._follow(second)
        before = await store.read_log(LATEST)
        published = [
            await store.publish(Change(ChangeKind.JTI, f"lost{i}", until=T0 + 60)) for i in range(3)
        ]
        await eventually(lambda: all(c in received for c in published), self.propagation_bound)
        await self.empty(store)
        assert (await store.read_log(LATEST)).epoch != before.epoch
        await self._after_loss_the_listener_follows_the_new_log(store, second, received, reconciles)

    async def test_generation_starts_at_zero_and_increments(self, store: Store) -> None:
        assert await store.get_user_generation("u1") == 0
        assert await store.bump_user_generation("u1") == 1
        assert await store.bump_user_generation("u1") == 2
        assert await store.get_user_generation("u1") == 2
        assert await store.get_user_generation("u2") == 0

    async def test_concurrent_bumps_yield_distinct_increasing_generations(
        self, store: Store, second: Store
    ) -> None:
        bumps = [(store, second)[i % 2].bump_user_generation("u1") for i in range(20)]
        assert sorted(await asyncio.gather(*bumps)) == list(range(1, 21))
        assert await second.get_user_generation("u1") == 20

    # -- keys ---------------------------------------------------------------------------------
    async def test_keys_round_trip_oldest_first(self, store: Store) -> None:
        newer = StoredKey("k2", "EdDSA", b"\x00sealed\xff", '{"kty":"OKP"}', created_at=T0 + 10)
        older = StoredKey("k1", "HS256", b"\x01" * 64, "", created_at=T0)
        await store.save_key(newer)
        await store.save_key(older)
        assert await store.load_keys() == [older, newer]

    async def test_duplicate_kid_is_a_conflict(self, store: Store) -> None:
        key = StoredKey("k1", "EdDSA", b"a", "{}", created_at=T0)
        await store.save_key(key)
        with pytest.raises(Conflict):
            await store.save_key(replace(key, sealed_private=b"b"))
        assert await store.load_keys() == [key]

    async def test_retire_and_delete_keys(self, store: Store) -> None:
        await store.save_key(StoredKey("k1", "EdDSA", b"a", "{}", created_at=T0))
        await store.retire_key("k1", T0 + 900)
        await store.retire_key("missing", T0)
        [key] = await store.load_keys()
        assert key.retire_after == T0 + 900
        await store.delete_key("k1")
        await store.delete_key("missing")
        assert await store.load_keys() == []

    # -- users --------------------------------------------------------------------------------
    async def test_users_round_trip(self, store: Store) -> None:
        alice = UserRecord("1", "alice", "$argon2id$x", ("admin",), created_at=T0)
        await store.create_user(alice)
        assert await store.get_user("1") == alice
        assert await store.get_user_by_name("alice") == alice
        assert await store.get_user("2") is None
        assert await store.get_user_by_name("bob") is None

    async def test_duplicate_username_or_id_is_a_conflict(self, store: Store) -> None:
        await store.create_user(UserRecord("1", "alice", "h"))
        with pytest.raises(Conflict):
            await store.create_user(UserRecord("2", "alice", "h"))
        with pytest.raises(Conflict):
            await store.create_user(UserRecord("1", "bob", "h"))
        assert [u.username for u in await store.list_users()] == ["alice"]

    async def test_update_user_changes_only_given_fields(self, store: Store) -> None:
        await store.create_user(UserRecord("1", "alice", "h1", ("user",), created_at=T0))
        updated = await store.update_user("1", password_hash="h2")
        assert updated == UserRecord("1", "alice", "h2", ("user",), created_at=T0)
        updated = await store.update_user("1", roles=("admin",), disabled=True)
        assert updated == UserRecord("1", "alice", "h2", ("admin",), T0, disabled=True)
        assert await store.get_user("1") == updated
        assert await store.update_user("missing", password_hash="x") is None

    async def test_list_users_by_username(self, store: Store) -> None:
        for user_id, name in (("1", "carol"), ("2", "alice"), ("3", "bob")):
            await store.create_user(UserRecord(user_id, name, "h"))
        assert [u.username for u in await store.list_users()] == ["alice", "bob", "carol"]

    # -- login failures -----------------------------------------------------------------------
    async def test_failures_count_within_a_sliding_window(self, store: Store) -> None:
        assert await store.record_failure("user:a", now=T0, window=60) == 1
        assert await store.record_failure("user:a", now=T0 + 30, window=60) == 2
        assert await store.count_failures("user:a", now=T0 + 59, window=60) == 2
        assert await store.count_failures("user:a", now=T0 + 60, window=60) == 1
        assert await store.record_failure("user:a", now=T0 + 61, window=60) == 2
        assert await store.count_failures("user:b", now=T0, window=60) == 0

    async def test_clear_failures_resets_one_bucket(self, store: Store) -> None:
        await store.record_failure("user:a", now=T0, window=60)
        await store.record_failure("ip:x", now=T0, window=60)
        await store.clear_failures("user:a")
        assert await store.count_failures("user:a", now=T0, window=60) == 0
        assert await store.count_failures("ip:x", now=T0, window=60) == 1

    async def test_concurrent_failures_are_all_counted(self, store: Store, second: Store) -> None:
        records = [
            (store, second)[i % 2].record_failure("ip:x", now=T0, window=60) for i in range(20)
        ]
        assert sorted(await asyncio.gather(*records)) == list(range(1, 21))
        assert await store.count_failures("ip:x", now=T0, window=60) == 20

    # -- hostile input ------------------------------------------------------------------------
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
