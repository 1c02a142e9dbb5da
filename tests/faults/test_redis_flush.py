"""FLUSHDB under running ``authstate serve`` nodes (session and hybrid): the nodes keep their
connections, so nothing cuts them; the layout marker ``{g}:layout`` goes with the data.

What a user must see (docs/stores.md, "when the store loses data"): a revoked cookie is
never accepted again, no request answers 500, the nodes recognise the loss at their next
look at the change log (each bus round, every keepalive, even when nobody publishes) and
from then on refuse every lost cookie, later logouts reach every node, and a node started
on the emptied database starts, writes the marker again and serves. Until that look a
node may still answer a lost session from its cache, so the test asserts nothing about
that moment beyond "never 500".
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.serve_process import Served, serve
from tests.multinode.nodes import (
    OwnRedis,
    add_user,
    cluster,
    login,
    node_env,
    post,
    statuses,
    wait_for,
)

pytestmark = pytest.mark.slow

LAYOUT_MARKER = b"authstate:{g}:layout"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    directory = tmp_path / "redis"
    directory.mkdir()
    server = OwnRedis(directory, persistence=("--appendonly", "no"))
    try:
        yield server
    finally:
        server.kill()


def health(nodes: list[Served]) -> list[int]:
    return [httpx.get(f"{node.url}/healthz", timeout=5).status_code for node in nodes]


@pytest.mark.parametrize("mode", ["session", "hybrid"])
def test_flushdb_under_running_nodes_never_revives_a_revoked_cookie_and_later_logouts_reach_all(
    tmp_path: Path, own_redis: OwnRedis, mode: str
) -> None:
    import redis

    url = own_redis.url
    raw = redis.Redis(port=own_redis.port)
    try:
        name = add_user(url)
        with cluster(tmp_path, url, mode, count=2) as nodes:
            lost = login(nodes[0], name)
            revoked = login(nodes[0], name)
            assert statuses(nodes, lost) == [200, 200]
            assert statuses(nodes, revoked) == [200, 200]  # cached on both nodes
            assert post(nodes[1], "/auth/logout", revoked).status_code == 204
            assert wait_for(lambda: statuses(nodes, revoked) == [401, 401], timeout=5)
            assert raw.get(LAYOUT_MARKER) == b"2"

            raw.flushdb()
            assert raw.get(LAYOUT_MARKER) is None
            seen: set[int] = set()
            for _ in range(10):
                seen.update(statuses(nodes, lost))
                assert statuses(nodes, revoked) == [401, 401], "a revoked cookie came back"
            assert seen <= {200, 401, 503}, seen
            # Nobody publishes: each node's bus reads the log every keepalive (1 s), finds
            # it emptied, reconciles and refuses what was lost (a hang guard, not a bound).
            assert wait_for(lambda: statuses(nodes, lost) == [401, 401], timeout=15)
            refresh = httpx.post(
                f"{nodes[0].url}/auth/refresh",
                headers={"cookie": lost.cookie, "x-csrf-token": lost.csrf},
                timeout=10,
            )
            assert refresh.status_code in (401, 404), refresh.text  # nothing to rotate

            # A node started on the emptied database (no marker, no sessions) starts and
            # writes the marker again: an empty prefix is not mistaken for layout 1.
            with serve(tmp_path, "--mode", mode, "--store", url, env=node_env()) as late:
                assert raw.get(LAYOUT_MARKER) == b"2"
                everyone = [*nodes, late]
                again = add_user(url)  # the users went with everything else
                fresh = login(nodes[1], again)
                other = login(late, again)
                # The logout publishes: every node looks at the log, sees it was emptied,
                # reconciles, and refuses what was lost.
                assert post(nodes[0], "/auth/logout", fresh).status_code == 204
                assert wait_for(lambda: statuses(everyone, fresh) == [401] * 3, timeout=5)
                assert wait_for(lambda: statuses(everyone, lost) == [401] * 3, timeout=5)
                assert statuses(everyone, revoked) == [401] * 3
                assert statuses(everyone, other) == [200] * 3
                assert wait_for(lambda: health(everyone) == [200] * 3, timeout=15)
                assert post(late, "/auth/logout-all", other).status_code == 204
                assert wait_for(lambda: statuses(everyone, other) == [401] * 3, timeout=5)
                for node in everyone:
                    assert "Traceback" not in node.stderr, node.stderr[-3000:]
            assert all("went back" in node.stderr for node in nodes)
    finally:
        raw.close()
