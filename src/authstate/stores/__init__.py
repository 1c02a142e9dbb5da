"""Stores: where sessions, refresh families, keys, users and the change log live.

``open_store(url)`` picks the backend from the URL scheme and returns it opened:

    memory://                       MemoryStore (one process, development and tests)
    sqlite:///relative/path.db      SQLiteStore (several processes on one machine)
    sqlite:////absolute/path.db
    postgresql://…  postgres://…    PostgresStore (needs the ``postgres`` extra)
    redis://…  rediss://…           RedisStore (needs the ``redis`` extra)
    redis+cluster://…

The PostgreSQL and Redis modules are imported only when asked for, so the core install
needs neither driver.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from authstate._time import Clock
from authstate.errors import ConfigurationError
from authstate.stores.base import Store
from authstate.stores.memory import MemoryStore
from authstate.stores.sqlite import SQLiteStore, sqlite_path

__all__ = ["MemoryStore", "SQLiteStore", "Store", "open_store", "parse_store_url"]

_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://(.*)", re.DOTALL)
_BACKENDS = {
    "memory": "memory",
    "sqlite": "sqlite",
    "postgresql": "postgres",
    "postgres": "postgres",
    "redis": "redis",
    "rediss": "redis",
    "redis+cluster": "redis",
}
# backend -> (module, class, the extra that installs its driver, the driver's top package)
_OPTIONAL = {
    "postgres": ("authstate.stores.postgres", "PostgresStore", "postgres", "asyncpg"),
    "redis": ("authstate.stores.redis", "RedisStore", "redis", "redis"),
}
_EXAMPLES = "memory://, sqlite:///PATH, postgresql://…, redis://…, rediss://… or redis+cluster://…"


def _redact(url: str) -> str:
    # postgresql://user:password@host/db -> postgresql://user:***@host/db; errors end up in logs.
    return re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", url)


def parse_store_url(url: str) -> tuple[str, str]:
    """Split a store URL into ``(backend, target)`` without connecting to anything.

    ``backend`` is ``"memory"``, ``"sqlite"``, ``"postgres"`` or ``"redis"``. ``target`` is the
    database path for SQLite (``":memory:"`` for an in-memory database) and the URL itself
    otherwise. Raises ``ConfigurationError`` with a one-line message for anything else.
    """
    if any(c in url for c in "\r\n\x00"):
        raise ConfigurationError("the store URL must be one line of text")
    match = _SCHEME_RE.fullmatch(url)
    if match is None:
        raise ConfigurationError(f"{_redact(url)!r} is not a store URL (use {_EXAMPLES})")
    scheme, rest = match.group(1).lower(), match.group(2)
    backend = _BACKENDS.get(scheme)
    if backend is None:
        raise ConfigurationError(f"unknown store URL scheme {scheme + '://'!r} (use {_EXAMPLES})")
    if backend == "memory":
        if rest not in ("", "/"):
            raise ConfigurationError(
                f"{_redact(url)!r}: a memory store takes no host or path (use memory://)"
            )
        return backend, ""
    if backend == "sqlite":
        return backend, sqlite_path(url)
    if not rest:
        raise ConfigurationError(f"the {scheme}:// store URL names no server")
    return backend, f"{scheme}://{rest}"  # the scheme in lower case, as drivers expect


async def open_store(url: str, *, clock: Clock | None = None, heartbeat: float = 1.0) -> Store:
    """Create the store for ``url``, open it (schema included) and return it.

    ``heartbeat``: seconds between two proofs of life of a server store's bus (Redis PING,
    PostgreSQL ``SELECT 1``); a node's freshness is at most this old when all is well, so
    it must stay well below the staleness bound. The SQLite bus polls every 0.2 s.

    Raises ``ConfigurationError`` for a bad URL or a missing optional driver and
    ``StoreUnavailable`` when the store cannot be reached.
    """
    backend, target = parse_store_url(url)
    store: Store
    if backend == "memory":
        store = MemoryStore(url, clock=clock)
    elif backend == "sqlite":
        store = SQLiteStore(url, clock=clock)
    else:
        store = _optional_store_class(backend)(target, clock=clock, heartbeat=heartbeat)
    await store.open()
    return store


def _optional_store_class(backend: str) -> Any:
    module_name, class_name, extra, driver = _OPTIONAL[backend]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = (exc.name or "").split(".")[0]
        if exc.name != module_name and missing != driver:
            raise  # a bug inside the module, not a missing install: keep the traceback
        scheme = "postgresql" if backend == "postgres" else "redis"
        raise ConfigurationError(
            f"the {scheme}:// store needs the {extra} extra: pip install 'authstate[{extra}]'"
        ) from exc
    return getattr(module, class_name)
