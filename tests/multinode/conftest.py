from __future__ import annotations

import importlib.util
import os

import pytest

from tests.conftest import POSTGRES_URL, REDIS_URL, require_service


def _driver(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        message = f"{module} is not installed"
        if os.environ.get("AUTHSTATE_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def shared_store(request: pytest.FixtureRequest, tmp_path: object) -> str:
    """A store URL that several server processes can share."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/shared.db"
    if request.param == "postgres":
        _driver("asyncpg")
        require_service("PostgreSQL", "127.0.0.1", 5432)
        return POSTGRES_URL
    _driver("redis")
    require_service("Redis", "127.0.0.1", 6379)
    return REDIS_URL
