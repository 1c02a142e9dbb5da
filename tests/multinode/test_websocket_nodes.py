"""Three nodes on Redis and on PostgreSQL: a revocation made on one node closes the
WebSocket held open on another, within the propagation bound."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.multinode.nodes import add_user, cluster, login, percentiles, post
from tests.websocket.client import close_code, next_json, open_socket

pytestmark = pytest.mark.slow


@pytest.fixture(params=["postgres", "redis"])
def server_store(request: pytest.FixtureRequest) -> str:
    fixture = "postgres_schema_url" if request.param == "postgres" else "redis_prefixed_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.mark.parametrize("mode", ["stateless", "session", "hybrid"])
def test_a_revocation_on_one_node_closes_sockets_on_the_others_with_4401(
    tmp_path: Path, server_store: str, mode: str
) -> None:
    name = add_user(server_store)
    with cluster(tmp_path, server_store, mode) as nodes:
        samples = []
        for revoke in ("/auth/logout", "/auth/logout-all"):
            session = login(nodes[0], name)
            with ExitStack() as stack:
                # One socket on each of the two other nodes, opened with the same cookie.
                sockets = [stack.enter_context(open_socket(n, session.cookie)) for n in nodes[1:]]
                for socket in sockets:
                    assert next_json(socket)["user"]["username"] == name
                started = time.monotonic()
                assert post(nodes[0], revoke, session).status_code == 204
                for socket in sockets:
                    # close_code waits at most 15 s: far beyond the bound (max_staleness, 5 s).
                    assert close_code(socket) == 4401
                    samples.append(time.monotonic() - started)
        backend = server_store.split(":")[0]
        print(f"\nwebsocket closed after revocation, {mode} on {backend}: {percentiles(samples)}")


@pytest.mark.parametrize("mode", ["session", "hybrid"])
def test_a_login_on_one_node_is_pushed_to_the_users_sockets_on_another(
    tmp_path: Path, server_store: str, mode: str
) -> None:
    # Nothing polls the list: the login reaches node B only as a change on the store's bus.
    name = add_user(server_store)
    with cluster(tmp_path, server_store, mode, count=2) as (node_a, node_b):
        first = login(node_b, name)
        with open_socket(node_b, first.cookie) as socket:
            assert next_json(socket)["user"]["username"] == name
            second = login(node_a, name)
            pushed = next_json(socket)  # a hang guard (15 s), not a latency claim
            assert pushed["type"] == "sessions"
            assert len(pushed["sessions"]) == 2
            assert [s["current"] for s in pushed["sessions"]].count(True) == 1
            # And a logout of that session on node A is pushed too, leaving B's own.
            assert post(node_a, "/auth/logout", second).status_code == 204
            assert [s["current"] for s in next_json(socket)["sessions"]] == [True]
            assert socket.close_code is None
