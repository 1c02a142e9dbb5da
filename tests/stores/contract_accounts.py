"""The ``KeyStore``, ``UserStore`` and ``LoginThrottle`` contracts."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from authstate.errors import Conflict
from authstate.stores.base import (
    KeyStore,
    LoginThrottle,
    Store,
    StoredKey,
    UserRecord,
    UserStore,
)
from tests.stores.contract_base import (
    T0,
    ContractBase,
)


class KeyContract(ContractBase):
    """The ``KeyStore`` contract."""

    async def test_store_offers_keystore(self, store: Store) -> None:
        assert isinstance(store, KeyStore)

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


class UserContract(ContractBase):
    """The ``UserStore`` contract."""

    async def test_store_offers_userstore(self, store: Store) -> None:
        assert isinstance(store, UserStore)

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


class ThrottleContract(ContractBase):
    """The ``LoginThrottle`` contract."""

    async def test_store_offers_loginthrottle(self, store: Store) -> None:
        assert isinstance(store, LoginThrottle)

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

    async def test_purge_forgets_old_failures(self, store: Store) -> None:
        await store.record_failure("b", now=T0, window=60)
        assert await store.purge_expired(T0 + 61) >= 1
        assert await store.count_failures("b", now=T0 + 61, window=3600) == 0
