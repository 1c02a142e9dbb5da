"""Stores made before live roles (schema 1) are upgraded on open: their sessions gain empty
claims and roles version 0, keep working, and take part in ``set_user_grants``."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import asyncpg
import pytest

from authstate.stores._pg_schema import MIGRATIONS
from authstate.stores.postgres import PostgresStore
from authstate.stores.sqlite import SCHEMA, SQLiteStore
from tests.stores.contract_base import T0
from tests.stores.test_postgres import schema_url  # noqa: F401 - fixture

pytestmark = pytest.mark.anyio

# A session row as schema 1 stored it (no claims, no roles_version).
_V1_ROW = (
    "k1", "h1", "u1", "session", T0, T0, T0 + 3600, 0.0, json.dumps(["admin"]), "ua", "ip",
    json.dumps({"cart": 1}), None, None, 0,
)  # fmt: skip


async def test_a_schema_1_sqlite_file_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    for statement in SCHEMA:
        db.execute(statement)
    db.execute(
        "INSERT INTO sessions (session_key, handle, user_id, kind, created_at, last_seen_at,"
        " expires_at, idle_timeout, roles, user_agent, ip, data, previous_key, rotated_at,"
        " generation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        _V1_ROW,
    )
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    store = SQLiteStore(f"sqlite:///{path}")
    await store.open()
    try:
        await _check_upgraded(store)
    finally:
        await store.close()


async def test_a_schema_1_postgres_schema_is_upgraded(schema_url: str) -> None:  # noqa: F811
    conn = await asyncpg.connect(schema_url)
    try:
        await conn.execute(MIGRATIONS[0])
        await conn.execute(
            "CREATE TABLE authstate_schema (version integer PRIMARY KEY,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        await conn.execute("INSERT INTO authstate_schema (version) VALUES (1)")
        await conn.execute(
            "INSERT INTO authstate_sessions (key, handle, user_id, kind, created_at,"
            " last_seen_at, expires_at, idle_timeout, roles, user_agent, ip, data,"
            " previous_key, rotated_at, generation)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            *_V1_ROW,
        )
    finally:
        await conn.close()
    store = PostgresStore(schema_url)
    await store.open()
    try:
        await _check_upgraded(store)
    finally:
        await store.close()


async def _check_upgraded(store: SQLiteStore | PostgresStore) -> None:
    record = await store.get_session("k1")
    assert record is not None
    assert (record.roles, record.claims, record.roles_version) == (("admin",), {}, 0)
    assert record.data == {"cart": 1}
    await store.set_user_grants("u1", roles=("viewer",), claims={"a": 1})
    record = await store.get_session("k1")
    assert record is not None
    assert (record.roles, record.claims, record.roles_version) == (("viewer",), {"a": 1}, 1)
