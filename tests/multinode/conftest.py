from __future__ import annotations

import asyncio
import importlib.util
import secrets
from collections.abc import Iterator

import pytest

from tests.conftest import POSTGRES_URL, REDIS_URL, require_service, unavailable


def _driver(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        unavailable(f"{module} is not installed")


async def _sql(statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture
def postgres_schema_url() -> Iterator[str]:
    """PostgreSQL in a schema of this test's own (its connections are named after it)."""
    _driver("asyncpg")
    require_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"authstate_nodes_{secrets.token_hex(6)}"
    asyncio.run(_sql(f"CREATE SCHEMA {name}"))
    try:
        yield f"{POSTGRES_URL}?search_path={name}&application_name={name}"
    finally:
        asyncio.run(_sql(f"DROP SCHEMA {name} CASCADE"))


@pytest.fixture
def redis_prefixed_url() -> Iterator[str]:
    """Redis under a key prefix of this test's own, deleted afterwards."""
    _driver("redis")
    require_service("Redis", "127.0.0.1", 6379)
    prefix = f"authstate-nodes-{secrets.token_hex(6)}:"
    yield f"{REDIS_URL}?prefix={prefix}"
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def shared_store(request: pytest.FixtureRequest, tmp_path: object) -> str:
    """A store URL that several server processes can share."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/shared.db"
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_schema_url")
        return url
    url = request.getfixturevalue("redis_prefixed_url")
    return url
