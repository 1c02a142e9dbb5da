"""An ``AuthState`` in each mode on each persistent store (SQLite, Redis, PostgreSQL), with
a recorder subscribed to every lifecycle event."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from authstate import AuthState
from authstate.events import AuthEvent
from authstate.passwords import PasswordHasher
from authstate.settings import Settings

MODES = ("stateless", "session", "hybrid")
STORES = ("sqlite", "redis", "postgres")
PASSWORD = "correct horse battery"
IP = "192.0.2.10"


def fast_hasher() -> PasswordHasher:
    return PasswordHasher(memory_kib=64, time_cost=1, unsafe_allow_weak_parameters=True)


@pytest.fixture
async def store_url(
    request: pytest.FixtureRequest, tmp_path: Path, kind: str
) -> AsyncIterator[str]:
    """A fresh store of ``kind``: a SQLite file, a random Redis prefix on db 15, or a
    PostgreSQL schema of its own (dropped afterwards)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'authstate.db'}"
    elif kind == "redis":
        from tests.stores.test_redis import delete_prefix, prefixed

        redis_url = request.getfixturevalue("redis_url")
        prefix = f"t{secrets.token_hex(6)}:"
        yield prefixed(redis_url, prefix)
        await delete_prefix(redis_url, prefix)
    else:
        import asyncpg

        postgres_url = request.getfixturevalue("postgres_url")
        name = f"authstate_test_{secrets.token_hex(6)}"
        conn = await asyncpg.connect(postgres_url)
        try:
            await conn.execute(f"CREATE SCHEMA {name}")
            yield f"{postgres_url}?search_path={name}"
        finally:
            await conn.execute(f"DROP SCHEMA {name} CASCADE")
            await conn.close()


@pytest.fixture(params=STORES)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Recorder:
    """Every event heard, in order."""

    def __init__(self) -> None:
        self.events: list[AuthEvent] = []

    def __call__(self, event: AuthEvent) -> None:
        self.events.append(event)

    def of(self, event_type: type[AuthEvent]) -> list[Any]:
        return [e for e in self.events if isinstance(e, event_type)]

    def clear(self) -> None:
        self.events.clear()


@pytest.fixture
async def auth(store_url: str, mode: str) -> AsyncIterator[AuthState]:
    settings = Settings.from_env(
        {},
        mode=mode,
        store=store_url,
        secret="s" * 40,
        refresh_grace="0s",  # a repeat of a rotated token is reuse at once
        login_max_attempts=2,
    )
    async with AuthState(settings, password_hasher=fast_hasher()) as started:
        await started.accounts.add_user("alice", PASSWORD, ("staff",))
        yield started


@pytest.fixture
def recorder(auth: AuthState) -> Recorder:
    recorder = Recorder()
    auth.subscribe(recorder)
    return recorder
