"""Fixtures for the attack catalogue: a reference app per mode, and log capture for the run.

Every test here runs with the ``authstate`` loggers at DEBUG feeding ``harness.LOG``; the
last module (``test_k_cross_cutting``) checks that no credential the harness saw reached it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.security.harness import (
    JWT_MODES,
    MODES,
    STATEFUL_MODES,
    CollectingHandler,
    Node,
    running,
)


@pytest.fixture(scope="session", autouse=True)
def collect_logs() -> Iterator[None]:
    handler = CollectingHandler()
    logger = logging.getLogger("authstate")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield
    logger.removeHandler(handler)
    logger.setLevel(previous)


@pytest.fixture(params=MODES)
async def node(request: pytest.FixtureRequest) -> AsyncIterator[Node]:
    """The reference app in each mode on ``memory://``, with users mallory and alice."""
    async with running(request.param) as started:
        yield started


@pytest.fixture(params=JWT_MODES)
async def jwt_node(request: pytest.FixtureRequest) -> AsyncIterator[Node]:
    """The app in each mode whose auth cookie is a JWT (stateless, hybrid), EdDSA keys."""
    async with running(request.param) as started:
        yield started


@pytest.fixture(
    params=[(m, a) for m in JWT_MODES for a in ("EdDSA", "ES256", "HS256")],
    ids=lambda p: f"{p[0]}-{p[1]}",
)
async def jwt_node_any_alg(request: pytest.FixtureRequest) -> AsyncIterator[Node]:
    """Each JWT mode with each signing algorithm we support."""
    mode, alg = request.param
    async with running(mode, algorithm=alg) as started:
        yield started


@pytest.fixture(params=STATEFUL_MODES)
async def stateful_node(request: pytest.FixtureRequest) -> AsyncIterator[Node]:
    """The modes that keep server-side sessions (session, hybrid)."""
    async with running(request.param) as started:
        yield started


@pytest.fixture
async def hybrid_node() -> AsyncIterator[Node]:
    async with running("hybrid") as started:
        yield started
