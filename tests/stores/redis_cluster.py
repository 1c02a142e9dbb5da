"""A throwaway 3-master Redis Cluster for the tests, started on spare local ports.

``redis_cluster_url`` (session scope) starts three ``redis-server`` processes in cluster
mode in a temporary directory (no persistence), joins them with ``redis-cli --cluster
create``, waits for ``cluster_state:ok`` and yields ``redis+cluster://127.0.0.1:PORT``.
The processes are stopped when the session ends. Every wait is bounded. Without the
binaries the tests skip (or fail with AUTHSTATE_REQUIRE_SERVICES=1, as in CI).
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import unavailable

_BUS_OFFSET = 10_000  # Redis Cluster talks to its peers on port + 10000


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _spare_ports(count: int) -> list[int]:
    """``count`` ports whose cluster-bus twins are free as well (randomised, so two test
    runs at the same time rarely pick the same ones)."""
    ports: list[int] = []
    candidates = random.sample(range(17_000, 19_999), 400)
    for port in candidates:
        if _free(port) and _free(port + _BUS_OFFSET) and port not in ports:
            ports.append(port)
            if len(ports) == count:
                return ports
    raise RuntimeError("no spare ports for a local Redis Cluster")


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout} s")
        time.sleep(0.05)


def _answers(port: int) -> bool:
    try:
        with redis.Redis(port=port, socket_timeout=0.5) as client:
            return bool(client.ping())
    except redis.RedisError:
        return False


def _cluster_ok(port: int) -> bool:
    try:
        with redis.Redis(port=port, socket_timeout=0.5, decode_responses=True) as client:
            info = client.execute_command("CLUSTER INFO")
    except redis.RedisError:
        return False
    # redis-py parses CLUSTER INFO into a dict; older versions return the raw text.
    if isinstance(info, dict):
        return info.get("cluster_state") == "ok"
    return "cluster_state:ok" in str(info)


def _start(server: str, port: int, directory: Path) -> subprocess.Popen[bytes]:
    log = (directory / f"redis-{port}.log").open("wb")
    options = {
        "port": str(port),
        "bind": "127.0.0.1",
        "cluster-enabled": "yes",
        "cluster-config-file": str(directory / f"nodes-{port}.conf"),
        "cluster-node-timeout": "2000",
        "dir": str(directory),
        "save": "",
        "appendonly": "no",
        "daemonize": "no",
    }
    return subprocess.Popen(
        [server, *(arg for name, value in options.items() for arg in (f"--{name}", value))],
        stdout=log,
        stderr=subprocess.STDOUT,
    )


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        unavailable("redis-server and redis-cli are needed for the Redis Cluster tests")
    directory = tmp_path_factory.mktemp("redis-cluster")
    ports = _spare_ports(3)
    processes = [_start(server, port, directory) for port in ports]
    try:
        for port in ports:
            _wait(lambda port=port: _answers(port), 10, f"redis-server on {port} did not answer")
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        for port in ports:
            _wait(lambda port=port: _cluster_ok(port), 20, f"cluster on {port} was not ok")
        yield f"redis+cluster://127.0.0.1:{ports[0]}"
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
