"""Several ``authstate serve`` processes on one shared store, driven over real HTTP."""

from __future__ import annotations

import secrets
import shutil
import socket
import statistics
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.cli.serve_process import (
    Served,
    clean_env,
    cookie_header,
    free_port,
    run_cli,
    serve,
)
from tests.conftest import unavailable

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


def statuses(nodes: list[Served], session: Session) -> list[int]:
    """What ``GET /auth/me`` answers ``session`` on each node."""
    return [me(node, session) for node in nodes]


def wait_for(predicate: object, timeout: float) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes (a hang guard, not a bound)."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return bool(predicate())


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


# Redis writes every change to its append-only file before answering: a restart keeps all.
PERSIST_EVERY_WRITE = ("--appendonly", "yes", "--appendfsync", "always")


class OwnRedis:
    """A Redis of the test's own on a spare port, with its files in ``directory``, which the
    test kills and restarts. ``persistence``: redis-server's options for it (by default every
    write is persisted, so a restart keeps the sessions)."""

    def __init__(
        self, directory: Path, *, persistence: tuple[str, ...] = PERSIST_EVERY_WRITE
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("redis-server is not installed")
        self.dir = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        self._args += [*persistence, "--dir", str(directory)]
        self._process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self._process = subprocess.Popen(self._args, stdout=subprocess.DEVNULL)
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(5)
