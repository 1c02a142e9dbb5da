"""Several ``authstate serve`` processes on one shared store, driven over real HTTP."""

from __future__ import annotations

import secrets
import statistics
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.cli.serve_process import Served, clean_env, cookie_header, run_cli, serve

SECRET = "multinode-test-secret-" + "x" * 24


def node_env(**extra: str) -> dict[str, str]:
    return clean_env(AUTHSTATE_SECRET=SECRET, **extra)


def add_user(store: str, password: str = "correct horse battery") -> str:
    name = "u" + secrets.token_hex(6)
    result = run_cli(
        "users", "add", name, "--password-stdin", "--store", store, stdin=password, env=node_env()
    )
    assert result.returncode == 0, result.stderr
    return name


@dataclass
class Session:
    cookie: str
    csrf: str


def login(node: Served, name: str, password: str = "correct horse battery") -> Session:
    response = httpx.post(
        f"{node.url}/auth/login", json={"username": name, "password": password}, timeout=10
    )
    assert response.status_code == 200, response.text
    return Session(cookie_header(response), response.json()["csrf_token"])


def me(node: Served, session: Session) -> int:
    return httpx.get(
        f"{node.url}/auth/me", headers={"cookie": session.cookie}, timeout=5
    ).status_code


def post(node: Served, path: str, session: Session) -> httpx.Response:
    headers = {"cookie": session.cookie, "x-csrf-token": session.csrf}
    return httpx.post(f"{node.url}{path}", headers=headers, timeout=10)


@contextmanager
def cluster(
    tmp_path: Path, store: str, mode: str, count: int = 3, **env: str
) -> Iterator[list[Served]]:
    with ExitStack() as stack:
        nodes = [
            stack.enter_context(
                serve(tmp_path, "--mode", mode, "--store", store, env=node_env(**env))
            )
            for _ in range(count)
        ]
        yield nodes


def time_until_rejected(nodes: list[Served], session: Session, timeout: float = 10.0) -> float:
    """Seconds from now until every node answers 401 for ``session``."""
    started = time.monotonic()
    pending = list(nodes)
    while pending and time.monotonic() - started < timeout:
        pending = [node for node in pending if me(node, session) != 401]
    assert not pending, f"{len(pending)} node(s) still accept a revoked cookie after {timeout} s"
    return time.monotonic() - started


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"p50={statistics.median(ordered) * 1000:.1f} ms p99={p99 * 1000:.1f} ms n={len(ordered)}"
    )
