"""Faults while nodes serve traffic: the store dies and returns, connections are cut,
a node is SIGKILLed. Nothing that should fail is let through; nothing answers 500."""

from __future__ import annotations

import asyncio
import importlib.util
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.serve_process import serve
from tests.conftest import POSTGRES_URL, unavailable
from tests.multinode.nodes import (
    OwnRedis,
    add_user,
    cluster,
    login,
    me,
    node_env,
    post,
    statuses,
    wait_for,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    try:
        yield server
    finally:
        server.kill()


@pytest.mark.parametrize(
    ("mode", "fail_closed"), [("session", False), ("hybrid", False), ("hybrid", True)]
)
def test_redis_killed_and_restarted_fails_closed_then_recovers_by_itself(
    tmp_path: Path, own_redis: OwnRedis, mode: str, fail_closed: bool
) -> None:
    url = own_redis.url
    name = add_user(url)
    env = {"AUTHSTATE_MAX_STALENESS": "1s", "AUTHSTATE_FAIL_CLOSED": "1" if fail_closed else "0"}
    with cluster(tmp_path, url, mode, count=2, **env) as nodes:
        live = login(nodes[0], name)
        revoked = login(nodes[0], name)
        assert post(nodes[1], "/auth/logout", revoked).status_code == 204
        assert statuses(nodes, live) == [200, 200]

        own_redis.kill()
        seen: set[int] = set()
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            seen.update(statuses(nodes, live))
            assert set(statuses(nodes, revoked)) <= {401, 503}, "a revoked cookie was let through"
        assert seen <= {200, 503}, f"unexpected statuses while the store was down: {seen}"
        health = [httpx.get(f"{n.url}/healthz", timeout=5).status_code for n in nodes]
        assert health == [503, 503]
        if mode == "session" or fail_closed:
            assert statuses(nodes, live) == [503, 503]  # fail closed past the staleness bound
        else:
            assert statuses(nodes, live) == [200, 200]  # the access JWT keeps verifying

        own_redis.start()
        assert wait_for(lambda: statuses(nodes, live) == [200, 200], timeout=15), statuses(
            nodes, live
        )
        assert wait_for(
            lambda: (
                [httpx.get(f"{n.url}/healthz", timeout=5).status_code for n in nodes] == [200, 200]
            ),
            timeout=15,
        )
        assert set(statuses(nodes, revoked)) == {401}


def test_cut_postgresql_connections_are_reestablished_without_errors(
    tmp_path: Path, postgres_schema_url: str
) -> None:
    if importlib.util.find_spec("asyncpg") is None:
        unavailable("asyncpg is not installed (pip install 'authstate[postgres]')")
    import asyncpg

    application = postgres_schema_url.rsplit("application_name=", 1)[1]
    name = add_user(postgres_schema_url)
    with cluster(tmp_path, postgres_schema_url, "session", count=2) as nodes:
        session = login(nodes[0], name)
        assert statuses(nodes, session) == [200, 200]

        async def cut() -> int:
            conn = await asyncpg.connect(POSTGRES_URL)
            try:
                return int(
                    await conn.fetchval(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE application_name = $1",
                        application,
                    )
                )
            finally:
                await conn.close()

        assert asyncio.run(cut()) > 0
        seen: set[int] = set()
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            seen.update(statuses(nodes, session))
        assert seen <= {200, 503}, seen
        assert wait_for(lambda: statuses(nodes, session) == [200, 200], timeout=15)
        fresh = login(nodes[1], name)  # writes work again too
        assert post(nodes[0], "/auth/logout-all", fresh).status_code == 204
        assert wait_for(lambda: statuses(nodes, session) == [401, 401], timeout=5)


@pytest.mark.parametrize("mode", ["session", "stateless"])
def test_sigkill_on_sqlite_loses_no_committed_session_or_revocation(
    tmp_path: Path, mode: str
) -> None:
    store = f"sqlite:///{tmp_path}/app.db"
    name = add_user(store)
    with serve(tmp_path, "--mode", mode, "--store", store, env=node_env()) as node:
        kept = login(node, name)
        revoked = login(node, name)
        assert post(node, "/auth/logout", revoked).status_code == 204
        node.stop(signal.SIGKILL)
    with serve(tmp_path, "--mode", mode, "--store", store, env=node_env()) as node:
        assert me(node, kept) == 200
        assert me(node, revoked) == 401
