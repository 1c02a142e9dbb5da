"""PostgreSQL schemas written by older authstate versions are upgraded on open.

Each test builds a genuine older schema (the migrations of that version, run as they were)
and fills it as that version stored rows, then opens the store: migration 4 rebuilds the
sessions table in its compact layout and every record must read back exactly as before.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from authstate.crypto.ids import hash_secret
from authstate.errors import StoreUnavailable
from authstate.rotation import RotationOutcome, rotate_refresh
from authstate.stores._pg_rows import handle_from_db, handle_to_db, key_from_db, key_to_db, to_db
from authstate.stores._pg_schema import MIGRATIONS, _handle_bytes, _key_bytes
from authstate.stores.base import SessionRecord
from authstate.stores.postgres import PostgresStore
from tests.stores.contract_base import DAY, T0, session
from tests.stores.test_postgres import schema_url  # noqa: F401 - fixture

pytestmark = pytest.mark.anyio

_S1, _R1, _R2 = hash_secret("s1"), hash_secret("r1"), hash_secret("r2")
_CANONICAL_HANDLE = "abcdefghijklmnopqrstuw"
_ODD_KEY, _ODD_HANDLE = "k" * 31, "h\\" * 7 + "h"  # lengths next to the decoded ones


def _old_rows(version: int) -> list[dict[str, Any]]:
    """Three rows as schema ``version`` stored them (text already escaped by ``to_db``)."""
    rows: list[dict[str, Any]] = [
        {
            "key": _S1, "handle": _CANONICAL_HANDLE, "user_id": "u1", "kind": "session",
            "created_at": T0, "last_seen_at": T0 + 10, "expires_at": T0 + DAY,
            "idle_timeout": 3600.0, "roles": '["admin"]', "user_agent": to_db("ua\\0 \x00"),
            "ip": "10.0.0.1", "data": '{"cart": 1}', "previous_key": None, "rotated_at": None,
            "generation": 2,
        },
        {
            "key": _R2, "handle": "h-family", "user_id": "u1", "kind": "refresh",
            "created_at": T0 - 100, "last_seen_at": T0 + 5, "expires_at": T0 + 30 * DAY,
            "idle_timeout": 0.0, "roles": "[]", "user_agent": "", "ip": "", "data": "{}",
            "previous_key": _R1, "rotated_at": T0 + 5, "generation": 0,
        },
        {
            "key": _ODD_KEY, "handle": to_db(_ODD_HANDLE), "user_id": "u1", "kind": "session",
            "created_at": T0, "last_seen_at": T0, "expires_at": T0 + DAY, "idle_timeout": 0.0,
            "roles": '["a", "b"]', "user_agent": "x", "ip": "::1", "data": '{"n": null}',
            "previous_key": None, "rotated_at": None, "generation": 0,
        },
    ]  # fmt: skip
    if version >= 2:
        rows[0].update(claims='{"tier": "gold"}', roles_version=3)
        rows[1].update(claims="{}", roles_version=0)
        rows[2].update(claims="{}", roles_version=1)
    if version >= 3:
        rows[0].update(auth_time=T0, remember=False)  # at creation, spelt out
        rows[1].update(auth_time=T0 + 1, remember=True)
        rows[2].update(auth_time=0.0, remember=True)  # "at creation", the pre-v3 default
    return rows


def _expected(version: int) -> dict[str, SessionRecord]:
    rows = _old_rows(version)
    records = {}
    for row, handle, user_agent in zip(
        rows, [_CANONICAL_HANDLE, "h-family", _ODD_HANDLE], ["ua\\0 \x00", "", "x"], strict=True
    ):
        records[row["key"]] = SessionRecord(
            key=row["key"],
            handle=handle,
            user_id=row["user_id"],
            kind=row["kind"],
            created_at=row["created_at"],
            last_seen_at=row["last_seen_at"],
            expires_at=row["expires_at"],
            idle_timeout=row["idle_timeout"],
            roles=tuple(json.loads(row["roles"])),
            user_agent=user_agent,
            ip=row["ip"],
            data=json.loads(row["data"]),
            previous_key=row["previous_key"],
            rotated_at=row["rotated_at"],
            generation=row["generation"],
            claims=json.loads(row.get("claims", "{}")),
            roles_version=row.get("roles_version", 0),
            auth_time=row.get("auth_time", 0.0),
            remember=row.get("remember", True),
        )
    return records


@pytest.fixture
async def conn(schema_url: str) -> AsyncIterator[Any]:  # noqa: F811
    """A plain connection to the test's schema, to build an old one or look at the tables."""
    conn = await asyncpg.connect(schema_url)
    yield conn
    await conn.close()


async def _build_old_schema(conn: Any, version: int) -> None:
    for migration in MIGRATIONS[:version]:
        await conn.execute(migration)
    await conn.execute(
        "CREATE TABLE authstate_schema (version integer PRIMARY KEY,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    for applied in range(1, version + 1):
        await conn.execute("INSERT INTO authstate_schema (version) VALUES ($1)", applied)
    for row in _old_rows(version):
        names = list(row)
        await conn.execute(
            f"INSERT INTO authstate_sessions ({', '.join(names)})"  # noqa: S608
            f" VALUES ({', '.join(f'${i}' for i in range(1, len(names) + 1))})",
            *row.values(),
        )
    await conn.execute(
        "INSERT INTO authstate_consumed (key, handle, expires_at) VALUES ($1, $2, $3)",
        _R1,
        "h-family",
        T0 + 30 * DAY,
    )


@pytest.mark.parametrize("version", [1, 2, 3])
async def test_an_older_schema_is_upgraded_and_keeps_every_record(
    schema_url: str,  # noqa: F811
    conn: Any,
    version: int,
) -> None:
    await _build_old_schema(conn, version)
    store = PostgresStore(schema_url)
    await store.open()
    try:
        expected = _expected(version)
        for key, record in expected.items():
            assert await store.get_session(key) == record
        assert await store.get_session_data(_ODD_HANDLE) == {"n": None}
        # Newest first, the tie at T0 broken by insertion order, which the upgrade kept.
        listed = [r.key for r in await store.list_sessions("u1")]
        assert listed == [_ODD_KEY, _S1, _R2]
        # The consumed key still identifies its family: presenting it again is reuse.
        assert await store.find_refresh(_R1) == expected[_R2]
        outcome = await rotate_refresh(
            store, _R1, hash_secret("r3"), now=T0 + 600, grace_seconds=10
        )
        assert outcome.outcome is RotationOutcome.REUSED
        # New rows go after the old ones, and the purge still finds the dead.
        await store.create_session(session("new", created_at=T0))
        assert [r.key for r in await store.list_sessions("u1")][:2] == ["new", _ODD_KEY]
        assert await store.purge_expired(T0 + 3610) >= 1
        assert await store.get_session(_S1) is None  # idled out at T0 + 10 + 3600
        versions = await conn.fetch("SELECT version FROM authstate_schema ORDER BY 1")
        assert [r["version"] for r in versions] == list(range(1, len(MIGRATIONS) + 1))
    finally:
        await store.close()


async def test_a_row_of_a_kind_this_version_does_not_know_stops_the_upgrade(
    schema_url: str,  # noqa: F811
    conn: Any,
) -> None:
    """A kind other than session or refresh (written by something else) is not cut to its
    first letter ("sso" read as a session): the upgrade stops, and nothing is lost."""
    await _build_old_schema(conn, 3)
    await conn.execute("UPDATE authstate_sessions SET kind = 'sso' WHERE key = $1", _S1)
    store = PostgresStore(schema_url)
    with pytest.raises(StoreUnavailable):
        await store.open()
    await store.close()
    versions = await conn.fetch("SELECT version FROM authstate_schema ORDER BY 1")
    assert [r["version"] for r in versions] == [1, 2, 3]
    kinds = await conn.fetch("SELECT key, kind FROM authstate_sessions ORDER BY inserted")
    assert [(r["key"], r["kind"]) for r in kinds] == [
        (_S1, "sso"),
        (_R2, "refresh"),
        (_ODD_KEY, "session"),
    ]


async def test_deleting_a_family_forgets_its_consumed_keys(
    schema_url: str,  # noqa: F811
    conn: Any,
) -> None:
    # Schema 4 replaced the consumed keys' foreign key (and its cascade) with a trigger.
    await _build_old_schema(conn, 3)
    store = PostgresStore(schema_url)
    await store.open()
    try:
        assert await conn.fetchval("SELECT count(*) FROM authstate_consumed") == 1
        assert await store.delete_session_by_handle("h-family") is not None
        assert await conn.fetchval("SELECT count(*) FROM authstate_consumed") == 0
        assert await store.find_refresh(_R1) is None
    finally:
        await store.close()


_TEXTS = [
    "",
    "k0",
    _S1,
    _S1.upper(),
    _S1[:-1] + "g",
    _ODD_KEY,
    "k" * 32,
    _CANONICAL_HANDLE,
    _CANONICAL_HANDLE[:-1] + "B",  # non-canonical: unused bits set
    _ODD_HANDLE,
    "h" * 15,
    "h" * 16,
    "\x00",
    "\\",
    "\ud800",
    "ü🔑",
    "\xff",
]


@pytest.mark.parametrize("text", _TEXTS)
def test_keys_and_handles_round_trip_and_never_collide(text: str) -> None:
    for to_bytes, from_bytes in ((key_to_db, key_from_db), (handle_to_db, handle_from_db)):
        stored = to_bytes(text)
        assert from_bytes(stored) == text
        assert [to_bytes(other) for other in _TEXTS].count(stored) == 1


async def test_the_migration_stores_keys_and_handles_as_the_store_does(conn: Any) -> None:
    for text in _TEXTS:
        stored = to_db(text)
        key = await conn.fetchval(f"SELECT {_key_bytes('$1::text')}", stored)
        handle = await conn.fetchval(f"SELECT {_handle_bytes('$1::text')}", stored)
        assert (key, handle) == (key_to_db(text), handle_to_db(text)), text


async def test_the_rebuilt_table_keeps_the_grants_of_the_old_one(
    schema_url: str,  # noqa: F811
    conn: Any,
) -> None:
    # Deployments migrate with an owner and run with a role that may only read and write.
    await _build_old_schema(conn, 3)
    role = f"authstate_app_{schema_url.rsplit('_', 1)[-1]}"
    schema = schema_url.split("search_path=")[1].split("&")[0]
    try:
        await conn.execute(f"CREATE ROLE {role}")
        await conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON authstate_sessions TO {role}")
        store = PostgresStore(schema_url)
        await store.open()
        await store.close()
        granted = await conn.fetch(
            "SELECT privilege_type FROM information_schema.role_table_grants"
            " WHERE table_schema = $1 AND table_name = 'authstate_sessions' AND grantee = $2",
            schema,
            role,
        )
        assert sorted(r["privilege_type"] for r in granted) == [
            "DELETE",
            "INSERT",
            "SELECT",
            "UPDATE",
        ]
    finally:
        await conn.execute(f"DROP OWNED BY {role}")
        await conn.execute(f"DROP ROLE {role}")
