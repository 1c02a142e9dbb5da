"""A user at the session cap logs in from many clients at once, on two ``authstate serve``
nodes sharing Redis (session layout 2 keeps a user's sessions in one string, rewritten by
each write): no login fails, the user ends with at most AUTHSTATE_MAX_SESSIONS_PER_USER
live sessions, and every node agrees which cookies still work (the evicted ones are
refused everywhere: the bus carries each eviction)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.cli.serve_process import Served, cookie_header
from tests.multinode.nodes import Session, add_user, cluster, login, me

pytestmark = pytest.mark.slow

CAP = 100  # the default AUTHSTATE_MAX_SESSIONS_PER_USER
BEFORE = 95
PARALLEL = 20
PASSWORD = "correct horse battery"


def login_status(node: Served, name: str) -> tuple[int, Session | None]:
    response = httpx.post(
        f"{node.url}/auth/login", json={"username": name, "password": PASSWORD}, timeout=30
    )
    if response.status_code != 200:
        return response.status_code, None
    return 200, Session(cookie_header(response), response.json()["csrf_token"])


def handle_of(node: Served, session: Session) -> str:
    response = httpx.get(f"{node.url}/auth/me", headers={"cookie": session.cookie}, timeout=5)
    assert response.status_code == 200, response.text
    return str(response.json()["session"]["id"])


def listed(node: Served, session: Session) -> set[str]:
    response = httpx.get(
        f"{node.url}/auth/sessions", headers={"cookie": session.cookie}, timeout=10
    )
    assert response.status_code == 200, response.text
    return {str(entry["id"]) for entry in response.json()["sessions"]}


def accepted(node: Served, sessions: list[Session]) -> set[int]:
    return {index for index, session in enumerate(sessions) if me(node, session) == 200}


@pytest.mark.parametrize("mode", ["session", "hybrid"])
def test_parallel_logins_at_the_cap_end_at_most_at_the_cap_and_every_node_agrees(
    tmp_path: Path, redis_prefixed_url: str, mode: str
) -> None:
    url = redis_prefixed_url
    name = add_user(url)
    with cluster(tmp_path, url, mode, count=2) as nodes:
        sessions = [login(nodes[i % 2], name) for i in range(BEFORE)]
        handles = [handle_of(nodes[0], session) for session in sessions]
        assert len(listed(nodes[1], sessions[-1])) == BEFORE

        with ThreadPoolExecutor(PARALLEL) as pool:
            results = list(pool.map(lambda i: login_status(nodes[i % 2], name), range(PARALLEL)))
        assert [status for status, _ in results] == [200] * PARALLEL
        fresh = [session for _, session in results if session is not None]
        sessions += fresh

        # Evictions travel on the bus: wait until both nodes answer alike, then compare.
        deadline = time.monotonic() + 10
        while accepted(nodes[0], sessions) != accepted(nodes[1], sessions):
            assert time.monotonic() < deadline, "the nodes disagree on which cookies work"
            time.sleep(0.2)
        alive = accepted(nodes[0], sessions)
        assert 0 < len(alive) <= CAP, len(alive)
        print(f"{len(alive)} of {len(sessions)} sessions alive after the parallel logins")
        one = sessions[min(alive)]
        in_store = listed(nodes[0], one)
        assert in_store == listed(nodes[1], one)
        assert len(in_store) == len(alive)
        assert in_store == {handles[i] for i in alive if i < BEFORE} | {
            handle_of(nodes[1], sessions[i]) for i in alive if i >= BEFORE
        }
        # The oldest went first: no evicted session is newer than a surviving old one.
        survivors_before = sorted(i for i in alive if i < BEFORE)
        if survivors_before:
            assert survivors_before == list(range(survivors_before[0], BEFORE))
        for node in nodes:
            assert "Traceback" not in node.stderr, node.stderr[-3000:]
