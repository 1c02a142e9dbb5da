"""Real WSGI nodes for the black-box tests: the example Flask and Django apps under
gunicorn (threads, optionally several forked workers), beside ``authstate serve``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.cli.serve_process import free_port, serve
from tests.conftest import unavailable
from tests.multinode.nodes import node_env

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SRC = Path(__file__).resolve().parents[2] / "src"
APPS = {"flask": "flask_app:app", "django": "django_app.wsgi:application"}


@dataclass
class Node:
    """One running server: its name (serve, flask, django) and base URL."""

    kind: str
    url: str
    log: Path


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited early:\n{log.read_text()}")
        with suppress(httpx.TransportError):
            if httpx.get(f"{url}/auth/me", timeout=2).status_code == 401:
                return
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not answer:\n{log.read_text()}")


@contextmanager
def gunicorn(
    tmp_path: Path, kind: str, store: str, *, workers: int = 1, threads: int = 8, **env: str
) -> Iterator[Node]:
    """The example app ``kind`` under gunicorn on a free port of 127.0.0.1."""
    try:
        import gunicorn as _  # noqa: F401
    except ImportError:
        unavailable("gunicorn is not installed (the test extra has it)")
    port = free_port()
    log = tmp_path / f"{kind}-{port}.log"
    environment = node_env(AUTHSTATE_STORE=store, **env)
    environment["PYTHONPATH"] = os.pathsep.join([str(SRC), str(EXAMPLES)])
    environment["DJANGO_SETTINGS_MODULE"] = "django_app.settings"
    command = [
        sys.executable, "-m", "gunicorn",
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers),
        "--threads", str(threads),
        "--graceful-timeout", "5",
        "--timeout", "60",
        APPS[kind],
    ]  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=tmp_path, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, log)
        yield Node(kind, url, log)
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@contextmanager
def node(
    tmp_path: Path,
    kind: str,
    store: str,
    *,
    env: dict[str, str] | None = None,
    **options: int,
) -> Iterator[Node]:
    """A node of ``kind``: ``serve`` (authstate serve, hybrid), ``flask`` or ``django``;
    ``env``: more ``AUTHSTATE_*`` variables for it."""
    extra = env or {}
    if kind == "serve":
        served_env = node_env(**extra)
        with serve(tmp_path, "--mode", "hybrid", "--store", store, env=served_env) as served:
            yield Node(kind, served.url, served.stderr_path)
    else:
        with gunicorn(tmp_path, kind, store, **options, **extra) as started:  # type: ignore[arg-type]
            yield started
