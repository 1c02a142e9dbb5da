"""The store loses data under running nodes: revocations made afterwards still reach every node.

Each node remembers the last change-log seq it delivered. When the store comes back with less
(a Redis restarted empty, restored from an older snapshot or failed over to a replica that was
behind; a PostgreSQL table restored from a backup), its counter goes back too, and every later
logout used to be dropped by the other nodes as "already delivered", for ever, while /healthz
said 200 (chaos report F2). The tests push the counter up, lose data, log out on node 0 and
require the other nodes to refuse within the propagation bound.
"""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.serve_process import Served
from tests.conftest import unavailable
from tests.multinode.nodes import OwnRedis, Session, add_user, cluster, login, me, post

pytestmark = pytest.mark.slow

PROPAGATION_BOUND = 3.0  # seconds; the buses need milliseconds, this leaves room for CI
PUSHES = 12  # login+logout cycles before the loss: the counter moves past what is kept
KEPT = 4  # sessions that outlive the loss and are logged out after it


class SnapshotRedis(OwnRedis):
    """A Redis of the test's own on a spare port that keeps its data in an RDB file only when
    told to (``SAVE``): the test takes a snapshot, writes more, then kills the server and
    starts it from the snapshot (a restore from an older backup), or from nothing."""

    def __init__(self, tmp_path: Path) -> None:
        directory = tmp_path / "redis"
        directory.mkdir()
        super().__init__(directory, persistence=("--appendonly", "no"))

    def snapshot(self) -> Path:
        import redis

        client = redis.Redis(port=self.port)
        try:
            client.save()
        finally:
            client.close()
        copy = self.dir / "snapshot.rdb"
        shutil.copy(self.dir / "dump.rdb", copy)
        return copy

    def kill_and_restart(self, from_snapshot: Path | None) -> None:
        """SIGKILL, then start again from ``from_snapshot`` (None: start empty)."""
        self.kill()
        dump = self.dir / "dump.rdb"
        dump.unlink(missing_ok=True)
        if from_snapshot is not None:
            shutil.copy(from_snapshot, dump)
        self.start()


@pytest.fixture
def snapshot_redis(tmp_path: Path) -> Iterator[SnapshotRedis]:
    server = SnapshotRedis(tmp_path)
    try:
        yield server
    finally:
        server.kill()


def push_the_counter(node: Served, name: str) -> None:
    for _ in range(PUSHES):
        assert post(node, "/auth/logout", login(node, name)).status_code == 204


def wait_healthy(nodes: list[Served], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        codes = []
        for node in nodes:
            try:
                codes.append(httpx.get(f"{node.url}/healthz", timeout=2).status_code)
            except httpx.TransportError:
                codes.append(0)
        if codes == [200] * len(nodes):
            return
        time.sleep(0.1)
    pytest.fail(f"the nodes did not become healthy again: {codes}")


def warm(nodes: list[Served], sessions: list[Session]) -> None:
    for session in sessions:
        assert [me(node, session) for node in nodes] == [200] * len(nodes)


def assert_refused_everywhere(nodes: list[Served], sessions: list[Session]) -> None:
    """Every session answers 401 on every node within the propagation bound, and stays so."""
    deadline = time.monotonic() + PROPAGATION_BOUND
    pending = [(node, session) for node in nodes for session in sessions]
    while pending and time.monotonic() < deadline:
        pending = [(n, s) for n, s in pending if me(n, s) != 401]
    if pending:
        pytest.fail(
            f"{len(pending)} logged-out (node, session) pairs still accepted"
            f" {PROPAGATION_BOUND} s after logout"
        )
    for node in nodes:
        for session in sessions:
            assert me(node, session) == 401


def logged_data_loss(nodes: list[Served]) -> bool:
    return all("went back" in node.stderr for node in nodes[1:])


@pytest.mark.parametrize("mode", ["session", "stateless"])
def test_logouts_after_redis_is_restored_from_an_older_snapshot_reach_every_node(
    tmp_path: Path, snapshot_redis: SnapshotRedis, mode: str
) -> None:
    url = snapshot_redis.url
    name = add_user(url)
    with cluster(tmp_path, url, mode) as nodes:
        kept = [login(nodes[0], name) for _ in range(KEPT)]
        warm(nodes, kept)
        snapshot = snapshot_redis.snapshot()
        push_the_counter(nodes[0], name)

        snapshot_redis.kill_and_restart(from_snapshot=snapshot)
        wait_healthy(nodes)
        warm(nodes, kept)  # in the snapshot, so alive, and cached again on every node
        for session in kept:
            assert post(nodes[0], "/auth/logout", session).status_code == 204

        assert_refused_everywhere(nodes, kept)
        assert logged_data_loss(nodes)


def test_sessions_lost_with_an_emptied_redis_are_refused_and_later_logouts_reach_every_node(
    tmp_path: Path, snapshot_redis: SnapshotRedis
) -> None:
    url = snapshot_redis.url
    name = add_user(url)
    with cluster(tmp_path, url, "session") as nodes:
        lost = [login(nodes[0], name) for _ in range(KEPT)]
        warm(nodes, lost)
        push_the_counter(nodes[0], name)

        snapshot_redis.kill_and_restart(from_snapshot=None)
        wait_healthy(nodes)
        # The store no longer has them: no node may answer from its cache once healthy (S1b).
        for node in nodes:
            for session in lost:
                assert me(node, session) == 401

        again = add_user(url)  # the users went with everything else
        fresh = [login(nodes[0], again) for _ in range(KEPT)]
        warm(nodes, fresh)
        for session in fresh:
            assert post(nodes[0], "/auth/logout", session).status_code == 204
        assert_refused_everywhere(nodes, fresh)
        assert logged_data_loss(nodes)


def test_logouts_after_the_postgresql_change_log_is_restored_from_a_backup_reach_every_node(
    tmp_path: Path, postgres_schema_url: str
) -> None:
    if importlib.util.find_spec("asyncpg") is None:
        unavailable("asyncpg is not installed (pip install 'authstate[postgres]')")
    import asyncpg

    url = postgres_schema_url
    name = add_user(url)

    async def sql(statement: str, *args: object) -> object:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetchval(statement, *args)
        finally:
            await conn.close()

    head = "SELECT value FROM authstate_counters WHERE name = 'changes'"
    with cluster(tmp_path, url, "session") as nodes:
        kept = [login(nodes[0], name) for _ in range(KEPT)]
        warm(nodes, kept)
        backup = asyncio.run(sql(head))
        push_the_counter(nodes[0], name)

        # The change log and its counter as the backup had them (the sessions table is
        # untouched, so the kept sessions are still valid).
        asyncio.run(sql("DELETE FROM authstate_changes WHERE seq > $1", backup))
        asyncio.run(sql("UPDATE authstate_counters SET value = $1 WHERE name = 'changes'", backup))
        time.sleep(1.5)  # one bus round (1 s): the nodes look at the log again
        wait_healthy(nodes)
        warm(nodes, kept)
        for session in kept:
            assert post(nodes[0], "/auth/logout", session).status_code == 204

        assert_refused_everywhere(nodes, kept)
        assert logged_data_loss(nodes)
