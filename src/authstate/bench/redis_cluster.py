"""A throwaway 3-master Redis Cluster on spare local ports (127.0.0.1 only).

``local_cluster(directory)`` starts three ``redis-server`` processes in cluster mode in
``directory`` (no persistence), joins them with ``redis-cli --cluster create``, waits for
``cluster_state:ok`` and yields the ports; the processes are stopped when it ends. Every
wait is bounded. The bench's scale section measures Redis Cluster on one; the store tests
start theirs with it too (``tests/stores/redis_cluster.py``).
"""

from __future__ import annotations

import contextlib
import functools
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import redis

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
    # The child keeps its own copy of the log's descriptor: ours closes once it has started.
    with (directory / f"redis-{port}.log").open("wb") as log:
        return subprocess.Popen(  # noqa: S603 - redis-server found on PATH, fixed arguments
            [server, *(arg for name, value in options.items() for arg in (f"--{name}", value))],
            stdout=log,
            stderr=subprocess.STDOUT,
        )


class ClusterUnavailable(RuntimeError):
    """``redis-server`` or ``redis-cli`` is not installed."""


@contextlib.contextmanager
def local_cluster(directory: Path) -> Iterator[list[int]]:
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        raise ClusterUnavailable("redis-server and redis-cli are needed for a Redis Cluster")
    ports = _spare_ports(3)
    processes = [_start(server, port, directory) for port in ports]
    try:
        for port in ports:
            _wait(functools.partial(_answers, port), 10, f"redis-server on {port} did not answer")
        subprocess.run(  # noqa: S603 - redis-cli found on PATH, fixed arguments
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
            _wait(functools.partial(_cluster_ok, port), 20, f"cluster on {port} was not ok")
        yield ports
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
