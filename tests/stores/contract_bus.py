"""The ``ChangeBus`` contract (the change log, delivery to every instance, epochs and data
loss) and the ``Generations`` contract."""

from __future__ import annotations

import asyncio
from typing import Any

from authstate.stores.base import (
    LATEST,
    Change,
    ChangeBus,
    ChangeKind,
    Generations,
    Store,
)
from tests.stores.contract_base import (
    T0,
    ContractBase,
    eventually,
)


class ChangeBusContract(ContractBase):
    """The ``ChangeBus`` contract."""

    async def test_store_offers_changebus(self, store: Store) -> None:
        assert isinstance(store, ChangeBus)

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

    async def test_a_login_change_reaches_other_instances_and_revokes_nothing(
        self, store: Store, second: Store
    ) -> None:
        # /auth/ws lists on every node re-read on it; revocation state must not hold it.
        received: list[Change] = []
        await second.listen(received.append)
        login = await store.publish(Change(ChangeKind.LOGIN, "user-1", until=T0 + 60))
        assert login == Change(ChangeKind.LOGIN, "user-1", T0 + 60, 0, login.seq)
        # A hang guard, not a latency claim.
        await eventually(lambda: login in received, 30.0)
        assert await second.changes_since(login.seq - 1) == [login]
        assert await store.active_revocations(T0) == ([], login.seq)

    async def test_the_bus_says_how_changes_travel(self, store: Store) -> None:
        # Reports (the bench's revocation table, the serve banner) read it from the store.
        described = store.describe_bus()
        assert described and described == described.strip() and "\n" not in described
        assert any(word in described for word in ("in-process", "poll", "pub/sub", "LISTEN/NOTIFY"))

    async def test_a_listening_bus_measures_its_lag(self, store: Store, second: Store) -> None:
        # The lag is measured on the listening path (a probe, or the poll), so a node
        # that listens has a figure once its first probe or poll completed.
        await second.listen(lambda change: None)
        await eventually(lambda: second.bus_lag() is not None, self.delivery_timeout)
        lag = second.bus_lag()
        assert lag is not None and lag >= 0

    async def test_listener_receives_local_changes(self, store: Store) -> None:
        received: list[Change] = []
        await store.listen(received.append)
        change = await store.publish(Change(ChangeKind.SID, "s", until=T0 + 60))
        await eventually(lambda: change in received, self.delivery_timeout)
        assert store.bus_healthy_since() is not None

    async def test_listener_on_another_instance_receives_every_change(
        self, store: Store, second: Store
    ) -> None:
        received: list[Change] = []
        await second.listen(received.append)
        published = [
            await store.publish(Change(ChangeKind.JTI, f"j{i}", until=T0 + 60)) for i in range(5)
        ]
        # A hang guard, not a latency claim (the bench's revocation table measures that).
        await eventually(lambda: all(c in received for c in published), 30.0)
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


class DataLossContract(ContractBase):
    """A store whose data can be lost or put back under running nodes (a server restarted
    without persistence, a replica that was behind, a restored backup). Only backends that
    can lose data under a running node include it (not the in-process memory store), and
    they provide the three hooks that do it to their own data."""

    async def snapshot(self, store: Store) -> Any:
        """A copy of the backend's data now, for ``restore``."""
        raise NotImplementedError

    async def restore(self, store: Store, copy: Any) -> None:
        """Put ``copy`` back over the backend's data (an operator restoring a backup)."""
        raise NotImplementedError

    async def empty(self, store: Store) -> None:
        """Lose every piece of the backend's data (a server restarted without persistence)."""
        raise NotImplementedError

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
        await eventually(lambda: len(reconciles) == 1, self.delivery_timeout)
        assert reconciles == [None]  # the bus did not claim health while reconciling
        later = await store.publish(Change(ChangeKind.SID, "later", until=T0 + 60))
        await eventually(lambda: later in received, self.delivery_timeout)
        await eventually(lambda: second.bus_healthy_since() is not None, self.delivery_timeout)
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
        await eventually(lambda: all(c in received for c in newer), self.delivery_timeout)
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
        await eventually(lambda: all(c in received for c in published), self.delivery_timeout)
        await self.empty(store)
        assert (await store.read_log(LATEST)).epoch != before.epoch
        await self._after_loss_the_listener_follows_the_new_log(store, second, received, reconciles)

    async def test_a_listener_notices_the_loss_before_anything_is_published(
        self, store: Store, second: Store
    ) -> None:
        """Data lost under connected nodes (FLUSHDB, rows deleted) with nobody publishing:
        the bus's own rounds read the log, so the node reconciles (and drops what its
        caches hold of the lost data) without waiting for the next change."""
        received, reconciles = await self._follow(second)
        published = await store.publish(Change(ChangeKind.JTI, "lost", until=T0 + 60))
        await eventually(lambda: published in received, self.delivery_timeout)
        await self.empty(store)
        await eventually(lambda: len(reconciles) == 1, self.delivery_timeout)
        assert reconciles == [None]  # the bus did not claim health while reconciling
        await eventually(lambda: second.bus_healthy_since() is not None, self.delivery_timeout)
        later = await store.publish(Change(ChangeKind.SID, "later", until=T0 + 60))
        await eventually(lambda: later in received, self.delivery_timeout)
        assert len(reconciles) == 1


class GenerationsContract(ContractBase):
    """The ``Generations`` contract."""

    async def test_store_offers_generations(self, store: Store) -> None:
        assert isinstance(store, Generations)

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
