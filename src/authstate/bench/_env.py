"""What the bench runs against: the machine, the installed packages and the stores.

Every store the bench touches is on 127.0.0.1 and private to one run: a fresh SQLite
file in a temporary directory, a Redis key prefix and a PostgreSQL schema named after the
run, all removed at the end. Redis and PostgreSQL are used only when reachable and when
their drivers (and authstate's store for them) import.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import os
import platform
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

DEFAULT_REDIS = "redis://127.0.0.1:6379/14"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
STORE_KINDS = ("memory", "sqlite", "redis", "postgres")
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})

_PACKAGES = (
    "authstate",
    "cryptography",
    "starlette",
    "uvicorn",
    "h11",
    "httptools",
    "uvloop",
    "fastapi",
    "pyjwt",
    "joserfc",
    "redis",
    "hiredis",
    "asyncpg",
    "starsessions",
    "fastapi-users",
    "sqlalchemy",
    "aiosqlite",
    "rich",
)


def machine() -> dict[str, Any]:
    """Date, hardware and software of this run, for the report."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo", encoding="utf-8") as info:
        kib = int(info.readline().split()[1])
        memory = f"{kib / 1024 / 1024:.0f} GiB"
    versions = {}
    for name in _PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": memory,
        "load": _loadavg(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "packages": versions,
        "wrk": wrk_version(),
    }


def _loadavg() -> str:
    with contextlib.suppress(OSError):
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    return ""


def wrk_version() -> str | None:
    path = shutil.which("wrk")
    if path is None:
        return None
    try:
        done = subprocess.run(  # noqa: S603 - a fixed argument list, no shell
            [path, "--version"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (done.stdout + done.stderr).strip().splitlines()
    return text[0] if text else "wrk"


def installed(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def reachable(url: str, timeout: float = 0.5) -> bool:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port
    if port is None:
        port = 6379 if parts.scheme.startswith("redis") else 5432
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_loopback(url: str) -> None:
    """The bench only ever targets this machine (a benchmark is a load generator)."""
    host = urlsplit(url).hostname
    if host not in LOOPBACK:
        raise ValueError(f"the bench only uses stores on 127.0.0.1, not {host!r}")


def with_query(url: str, **params: str) -> str:
    separator = "&" if "?" in url else "?"
    return url + separator + "&".join(f"{k}={v}" for k, v in params.items())


@dataclass
class BenchStores:
    """The stores of one run: ``urls[kind]`` for each usable kind, ``skipped[kind]`` why not."""

    run_id: str
    redis_url: str
    postgres_url: str
    urls: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    _tmp: str | None = None

    @property
    def redis_prefix(self) -> str:
        return f"authstate-bench-{self.run_id}:"

    @property
    def postgres_schema(self) -> str:
        return f"authstate_bench_{self.run_id}"

    def sqlite_url(self, name: str = "bench") -> str:
        if self._tmp is None:
            self._tmp = tempfile.mkdtemp(prefix="authstate-bench-")
        return f"sqlite:///{os.path.join(self._tmp, name + '.db')}"

    def fresh(self, kind: str, label: str) -> str:
        """A URL for an empty store of ``kind`` (its own file, prefix or schema)."""
        if kind == "memory":
            return "memory://"
        if kind == "sqlite":
            return self.sqlite_url(label)
        if kind == "redis":
            return with_query(self.redis_url, prefix=f"{self.redis_prefix}{label}:")
        return with_query(self.postgres_url, search_path=f"{self.postgres_schema}_{label}")


@contextlib.contextmanager
def bench_stores(
    kinds: tuple[str, ...], *, redis_url: str = DEFAULT_REDIS, postgres_url: str = DEFAULT_POSTGRES
) -> Iterator[BenchStores]:
    """Decide which stores this run uses; remove everything the run created afterwards."""
    stores = BenchStores(
        run_id=secrets.token_hex(4), redis_url=redis_url, postgres_url=postgres_url
    )
    for kind in kinds:
        reason = _unusable(kind, redis_url, postgres_url)
        if reason is None:
            stores.urls[kind] = stores.fresh(kind, "main")
        else:
            stores.skipped[kind] = reason
    try:
        yield stores
    finally:
        cleanup(stores)


def _unusable(kind: str, redis_url: str, postgres_url: str) -> str | None:
    if kind in ("memory", "sqlite"):
        return None
    url, driver, module = (
        (redis_url, "redis", "authstate.stores.redis")
        if kind == "redis"
        else (postgres_url, "asyncpg", "authstate.stores.postgres")
    )
    require_loopback(url)
    if not installed(driver):
        return f"the {driver} driver is not installed"
    if not installed(module):
        return f"{module} is not available in this checkout"
    if not reachable(url):
        return f"nothing answers at {urlsplit(url).netloc}"
    return None


def cleanup(stores: BenchStores) -> None:
    if stores._tmp is not None:
        shutil.rmtree(stores._tmp, ignore_errors=True)
    if "redis" in stores.urls:
        with contextlib.suppress(Exception):
            _drop_redis_prefix(stores.redis_url, stores.redis_prefix)
    if "postgres" in stores.urls:
        with contextlib.suppress(Exception):
            _drop_postgres_schemas(stores.postgres_url, stores.postgres_schema)


def _drop_redis_prefix(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        batch = []
        for key in client.scan_iter(match=prefix.replace("*", r"\*") + "*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                client.delete(*batch)
                batch = []
        if batch:
            client.delete(*batch)
    finally:
        client.close()


def _drop_postgres_schemas(url: str, schema_prefix: str) -> None:
    import asyncio

    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(url, timeout=5)
        try:
            names = await conn.fetch(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", schema_prefix + "%"
            )
            for row in names:
                # The names are ours (run id + label): quote them as identifiers anyway.
                await conn.execute(f'DROP SCHEMA IF EXISTS "{row[0]}" CASCADE')
        finally:
            await conn.close()

    asyncio.run(drop())


async def ensure_postgres_schema(url: str) -> None:
    """Create the schema a ``search_path=`` URL names (the store creates its tables)."""
    import asyncpg

    schema = dict(
        part.split("=", 1) for part in (urlsplit(url).query or "").split("&") if "=" in part
    ).get("search_path")
    if not schema:
        return
    base = url.split("?", 1)[0]
    conn = await asyncpg.connect(base, timeout=5)
    try:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    finally:
        await conn.close()
