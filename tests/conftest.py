"""Shared fixtures: the anyio backend and the real PostgreSQL / Redis services.

Locally, tests that need a service skip with the reason when it is not reachable.
With AUTHSTATE_REQUIRE_SERVICES=1 (CI) a missing service fails the run instead.
"""

from __future__ import annotations

import os
import socket
from typing import NoReturn

import pytest

POSTGRES_URL = os.environ.get(
    "AUTHSTATE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("AUTHSTATE_TEST_REDIS", "redis://127.0.0.1:6379/15")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def unavailable(reason: str) -> NoReturn:
    """Skip (locally) or fail (CI, ``AUTHSTATE_REQUIRE_SERVICES=1``) a test that cannot run
    here: a missing service, binary or package must not pass CI as a skip."""
    if os.environ.get("AUTHSTATE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} and AUTHSTATE_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(reason)


def require_service(name: str, host: str, port: int) -> None:
    """Skip (locally) or fail (CI) when a service is not reachable."""
    if not _reachable(host, port):
        unavailable(f"{name} is not reachable on {host}:{port}; start it to run this test")


@pytest.fixture
def postgres_url() -> str:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    return POSTGRES_URL


@pytest.fixture
def redis_url() -> str:
    require_service("Redis", "127.0.0.1", 6379)
    return REDIS_URL
