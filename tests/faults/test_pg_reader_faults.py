"""The held reading connection of the PostgreSQL store (``_pg_reader``) under real faults,
through ``authstate serve``: the server kills it during load, and an exclusive lock on the
sessions table (a migration, ``VACUUM FULL``) is taken while a node idles.

A cold session lookup runs a statement prepared on a connection of its own; when that
connection dies the lookup falls back to the pool and the connection is replaced in the
background. What a user must see: no 500, no wrong user, a logged-out cookie never
accepted, and the node holding nothing on the sessions table between requests (an idle
node must not stall a migration on another node, or every node queued behind it).
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.serve_process import Served
from tests.conftest import POSTGRES_URL, unavailable
from tests.multinode.nodes import Session, add_user, cluster, login, me, post

pytestmark = pytest.mark.slow

LOOKUP = "SELECT * FROM authstate_sessions WHERE key = $1"  # _pg_sessions.GET_SESSION
SESSIONS = 60
# Generous: an exclusive lock on a small table is granted at once unless a connection holds
# the table; a stuck wait ends with LockNotAvailableError instead of hanging the test.
LOCK_WAIT = "10s"


@pytest.fixture(autouse=True)
def _asyncpg() -> None:
    if importlib.util.find_spec("asyncpg") is None:
        unavailable("asyncpg is not installed (pip install 'authstate[postgres]')")


def application(url: str) -> str:
    return url.rsplit("application_name=", 1)[1]


def sql(statement: str, *args: object, url: str = POSTGRES_URL) -> list[Any]:
    import asyncpg

    async def run() -> list[Any]:
        conn = await asyncpg.connect(url)
        try:
            return list(await conn.fetch(statement, *args))
        finally:
            await conn.close()

    return asyncio.run(run())


def pids(url: str) -> set[int]:
    rows = sql("SELECT pid FROM pg_stat_activity WHERE application_name = $1", application(url))
    return {row["pid"] for row in rows}


def kill_lookup_connections(url: str) -> int:
    """Terminate the node's connections whose last statement was the session lookup (the
    held reader; a pool connection that served a fallback lookup may go too)."""
    rows = sql(
        "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity"
        " WHERE application_name = $1 AND query = $2",
        application(url),
        LOOKUP,
    )
    return int(rows[0]["n"])


def exclusive_lock(url: str) -> None:
    """What a migration or ``VACUUM FULL`` takes first: ``LockNotAvailableError`` when a
    connection keeps holding the sessions table."""
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(
                f"SET lock_timeout = '{LOCK_WAIT}'; BEGIN;"
                " LOCK TABLE authstate_sessions IN ACCESS EXCLUSIVE MODE; COMMIT"
            )
        finally:
            await conn.close()

    asyncio.run(run())


def user_and_handle(node: Served, session: Session) -> tuple[int, str, str]:
    response = httpx.get(f"{node.url}/auth/me", headers={"cookie": session.cookie}, timeout=10)
    if response.status_code != 200:
        return response.status_code, "", ""
    body = response.json()
    return 200, str(body["user"]["id"]), str(body["session"]["id"])


def test_an_idle_node_holds_no_lock_on_the_sessions_table(
    tmp_path: Path, postgres_schema_url: str
) -> None:
    """Before any cold lookup (a node just started, or whose lookups all hit its cache) and
    after its reading connection was replaced, the node must not keep a transaction open
    on authstate_sessions: a migration on another node would wait for it, and every login
    and lookup of every node would queue behind that migration."""
    url = postgres_schema_url
    name = add_user(url)
    with cluster(tmp_path, url, "session", count=1) as (node,):
        session = login(node, name)
        assert me(node, session) == 200  # from the node's cache: no cold lookup yet
        exclusive_lock(url)
        assert me(node, session) == 200

        # The held reader killed by the server, then replaced: the replacement must idle
        # the same way. The second node names its connections apart, so only the first
        # node's are counted and killed.
        other = add_user(url)
        app = application(url)
        second_url = url.replace(f"application_name={app}", f"application_name={app}_2")
        with cluster(tmp_path, second_url, "session", count=1) as (second,):
            cold = [login(second, other) for _ in range(2)]  # not in the first node's cache
            assert me(node, cold[0]) == 200  # a cold lookup, on the held reader
            assert kill_lookup_connections(url) == 1
            before = pids(url)
            assert me(node, cold[1]) == 200  # falls back to the pool; the reader reconnects
            deadline = time.monotonic() + 15
            while not (pids(url) - before):
                assert time.monotonic() < deadline, "the held reader did not come back"
                time.sleep(0.1)
            exclusive_lock(url)
            assert me(node, session) == 200
            assert [me(node, s) for s in cold] == [200, 200]


def test_the_reader_killed_during_load_falls_back_without_errors_or_wrong_answers(
    tmp_path: Path, postgres_schema_url: str
) -> None:
    url = postgres_schema_url
    names = [add_user(url) for _ in range(3)]
    with cluster(tmp_path, url, "session", count=2) as nodes:
        writer, reader = nodes
        # Made on the writer, so every first lookup on the reader node is cold.
        live = [login(writer, names[i % 3]) for i in range(SESSIONS)]
        owners = [user_and_handle(writer, session) for session in live]
        assert {status for status, _, _ in owners} == {200}
        dead = [login(writer, names[0]) for _ in range(10)]
        for session in dead:
            assert post(writer, "/auth/logout", session).status_code == 204

        stop = threading.Event()
        kills: list[int] = []

        def killer() -> None:
            while not stop.is_set():
                kills.append(kill_lookup_connections(url))
                time.sleep(0.05)

        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        try:
            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(lambda s: user_and_handle(reader, s), live))
                refused = list(pool.map(lambda s: me(reader, s), dead))
        finally:
            stop.set()
            thread.join(10)
        assert sum(kills) > 0, "the held reader was never killed"

        for (status, user, handle), (_, owner, own_handle) in zip(answers, owners, strict=True):
            assert status in (200, 503), status
            if status == 200:
                assert (user, handle) == (owner, own_handle), "another user's session"
        assert set(refused) <= {401, 503}, refused
        assert 200 in {status for status, _, _ in answers}
        # Afterwards everything answers as it should, and the reader is back.
        assert [user_and_handle(reader, s) for s in live] == owners
        assert {me(reader, s) for s in dead} == {401}
        exclusive_lock(url)
        for node in nodes:
            assert "Traceback" not in node.stderr, node.stderr[-3000:]
