"""The ``GrantStore`` contract: live roles and claims, rewritten into every record."""

from __future__ import annotations

import asyncio

from authstate.rotation import rotate_refresh
from authstate.stores.base import Change, ChangeKind, GrantStore, Store, UserGrants
from tests.stores.contract_base import HOSTILE, T0, ContractBase, family, session


class GrantsContract(ContractBase):
    """The ``GrantStore`` contract."""

    async def test_store_offers_grants(self, store: Store) -> None:
        assert isinstance(store, GrantStore)

    async def test_a_user_without_grants_has_none(self, store: Store) -> None:
        assert await store.get_user_grants("u1") is None

    async def test_setting_roles_bumps_the_version_and_keeps_claims(self, store: Store) -> None:
        first = await store.set_user_grants("u1", roles=("staff",))
        assert first == UserGrants("u1", 1, ("staff",), {})
        second = await store.set_user_grants("u1", claims={"tier": "gold", "n": [1, 2.5, None]})
        assert second == UserGrants("u1", 2, ("staff",), {"tier": "gold", "n": [1, 2.5, None]})
        third = await store.set_user_grants("u1", roles=())
        assert third == UserGrants("u1", 3, (), {"tier": "gold", "n": [1, 2.5, None]})
        assert await store.get_user_grants("u1") == third
        assert await store.get_user_grants("u2") is None

    async def test_claims_alone_leave_roles_unset(self, store: Store) -> None:
        grants = await store.set_user_grants("u1", claims={"a": 1})
        assert grants.roles is None
        assert await store.get_user_grants("u1") == UserGrants("u1", 1, None, {"a": 1})

    async def test_claims_and_version_round_trip_on_a_new_record(self, store: Store) -> None:
        claims = {"org": "acme", "seats": [1, 2], "nested": {"ok": True, "none": None}}
        await store.create_session(family("r1", claims=claims, roles_version=7))
        for found in (await store.get_session("r1"), await store.find_refresh("r1")):
            assert found is not None
            assert (found.claims, found.roles_version) == (claims, 7)
        listed = await store.list_sessions("u1")
        assert [(r.claims, r.roles_version) for r in listed] == [(claims, 7)]

    async def test_every_record_of_the_user_changes_in_place(self, store: Store) -> None:
        await store.create_session(session("k1", roles=("admin",), data={"cart": 3}))
        await store.create_session(family("r1", roles=("admin",)))
        await store.create_session(session("k2", user_id="u2", roles=("admin",)))
        await store.set_user_grants("u1", roles=("viewer",), claims={"org": "acme"})
        for key in ("k1", "r1"):
            record = await store.get_session(key)
            assert record is not None
            assert record.roles == ("viewer",)
            assert record.claims == {"org": "acme"}
            assert record.roles_version == 1
        k1 = await store.get_session("k1")
        assert k1 is not None and k1.data == {"cart": 3}  # session data is not touched
        other = await store.get_session("k2")
        assert other is not None
        assert (other.roles, other.claims, other.roles_version) == (("admin",), {}, 0)

    async def test_claims_alone_keep_the_records_roles(self, store: Store) -> None:
        await store.create_session(session("k1", roles=("admin",)))
        await store.set_user_grants("u1", claims={"a": True})
        record = await store.get_session("k1")
        assert record is not None
        assert (record.roles, record.claims, record.roles_version) == (("admin",), {"a": True}, 1)

    async def test_a_rotated_family_keeps_its_new_grants(self, store: Store) -> None:
        await store.create_session(family("r1", roles=("admin",)))
        await store.set_user_grants("u1", roles=("viewer",))
        result = await rotate_refresh(store, "r1", "r2", now=T0 + 1, grace_seconds=10)
        assert result.record is not None and result.record.roles == ("viewer",)
        assert result.record.roles_version == 1
        record = await store.get_session("r2")
        assert record is not None and (record.roles, record.roles_version) == (("viewer",), 1)

    async def test_deleted_records_are_not_recreated(self, store: Store) -> None:
        await store.create_session(session("k1"))
        await store.delete_session("k1")
        await store.set_user_grants("u1", roles=("x",))
        assert await store.list_sessions("u1") == []
        assert await store.get_session("k1") is None

    async def test_concurrent_changes_each_get_their_own_version(self, store: Store) -> None:
        results = await asyncio.gather(
            *(store.set_user_grants("u1", roles=(f"r{i}",)) for i in range(8))
        )
        assert sorted(g.version for g in results) == list(range(1, 9))
        final = await store.get_user_grants("u1")
        assert final is not None and final.version == 8

    async def test_roles_changes_are_active_revocations(self, store: Store) -> None:
        published = await store.publish(Change(ChangeKind.ROLES, "u1", T0 + 100, generation=3))
        active, last = await store.active_revocations(T0)
        assert published in active and last >= published.seq
        assert published not in (await store.active_revocations(T0 + 101))[0]

    async def test_hostile_user_ids_are_plain_data(self, store: Store) -> None:
        for i, user_id in enumerate(HOSTILE):
            await store.create_session(session(f"k{i}", user_id=user_id))
            grants = await store.set_user_grants(user_id, roles=("r",), claims={"s": user_id})
            assert grants == UserGrants(user_id, 1, ("r",), {"s": user_id})
            assert await store.get_user_grants(user_id) == grants
            record = await store.get_session(f"k{i}")
            assert record is not None and record.claims == {"s": user_id}
