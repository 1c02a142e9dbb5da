"""The SQLite store's connection, schema and the one place sqlite3 errors are translated
(``SQLiteBase``); the parts per concern build on it (see ``sqlite``).

No thread hop: every call runs sqlite3 directly on the event loop. Operations are
sub-millisecond local file operations, cheaper than handing them to a thread. One store
has one connection, and each operation is a synchronous function that runs start to
finish without awaiting, so the operations of one store never interleave. Processes are
serialised by SQLite's write lock: read-modify-write operations take it up front with
``BEGIN IMMEDIATE``. A busy lock is waited for briefly inside SQLite (``busy_timeout``),
then retried with ``asyncio.sleep`` so the loop keeps serving, up to ``lock_timeout``
seconds, and then reported as ``StoreUnavailable``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

from authstate._time import Clock, SystemClock
from authstate.errors import ConfigurationError, Conflict, StoreUnavailable
from authstate.stores._bus import new_epoch
from authstate.stores.base import ChangeListener, Reconciler

T = TypeVar("T")

IMMEDIATE = "BEGIN IMMEDIATE"  # take the write lock now: the read that follows is current
SNAPSHOT = "BEGIN"  # several reads that must agree with each other
# Waited inside SQLite (blocking the loop) before we back off asynchronously; short on purpose.
_BUSY_TIMEOUT_MS = 10
_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)

SCHEMA_VERSION = 3
# Created in one IMMEDIATE transaction guarded by PRAGMA user_version, so two processes
# starting at once cannot both build it; IF NOT EXISTS keeps a rerun harmless anyway.
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS sessions (
        id INTEGER PRIMARY KEY,
        session_key TEXT NOT NULL UNIQUE,
        handle TEXT NOT NULL UNIQUE,
        user_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        created_at REAL NOT NULL,
        last_seen_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        idle_timeout REAL NOT NULL,
        roles TEXT NOT NULL,
        user_agent TEXT NOT NULL,
        ip TEXT NOT NULL,
        data TEXT NOT NULL,
        previous_key TEXT,
        rotated_at REAL,
        generation INTEGER NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (user_id, created_at)",
    "CREATE INDEX IF NOT EXISTS sessions_by_expiry ON sessions (expires_at)",
    # Refresh keys a family has rotated away from, kept until the family expires: a second
    # use is reuse (or a grace-window retry).
    """CREATE TABLE IF NOT EXISTS consumed_keys (
        consumed_key TEXT PRIMARY KEY,
        handle TEXT NOT NULL,
        expires_at REAL NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS consumed_keys_by_handle ON consumed_keys (handle)",
    """CREATE TRIGGER IF NOT EXISTS sessions_forget_consumed_keys AFTER DELETE ON sessions
        BEGIN DELETE FROM consumed_keys WHERE handle = old.handle; END""",
    """CREATE TABLE IF NOT EXISTS changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        until REAL NOT NULL,
        generation INTEGER NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS changes_by_until ON changes (until)",
    """CREATE TABLE IF NOT EXISTS user_generations (
        user_id TEXT PRIMARY KEY,
        generation INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS signing_keys (
        kid TEXT PRIMARY KEY,
        alg TEXT NOT NULL,
        sealed_private BLOB NOT NULL,
        public_jwk TEXT NOT NULL,
        created_at REAL NOT NULL,
        retire_after REAL)""",
    """CREATE TABLE IF NOT EXISTS users (
        id TEXT PRIMARY KEY,
        username TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        roles TEXT NOT NULL,
        created_at REAL NOT NULL,
        disabled INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS login_failures (
        id INTEGER PRIMARY KEY,
        bucket TEXT NOT NULL,
        at REAL NOT NULL,
        forget_at REAL NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS login_failures_by_bucket ON login_failures (bucket, at)",
    "CREATE INDEX IF NOT EXISTS login_failures_by_expiry ON login_failures (forget_at)",
)

# Version 2: live roles and claims (``_sqlite_grants``). Run after SCHEMA on a new file too.
SCHEMA_V2 = (
    "ALTER TABLE sessions ADD COLUMN claims TEXT NOT NULL DEFAULT '{}'",
    "ALTER TABLE sessions ADD COLUMN roles_version INTEGER NOT NULL DEFAULT 0",
    """CREATE TABLE IF NOT EXISTS user_grants (
        user_id TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        roles TEXT,
        claims TEXT NOT NULL)""",
)

# Version 3: step-up's auth_time (0: the session's created_at) and the remember-me choice.
SCHEMA_V3 = (
    "ALTER TABLE sessions ADD COLUMN auth_time REAL NOT NULL DEFAULT 0",
    "ALTER TABLE sessions ADD COLUMN remember INTEGER NOT NULL DEFAULT 1",
)

_MMAP_BYTES = 1 << 30  # 1 GiB: about two million sessions
_PURGE = (
    "DELETE FROM sessions WHERE expires_at <= ?"
    " OR (idle_timeout > 0 AND last_seen_at + idle_timeout <= ?)",
    "DELETE FROM consumed_keys WHERE expires_at <= ?",
    # AUTOINCREMENT never reuses a seq, even once every row is gone: pollers never go back.
    "DELETE FROM changes WHERE until < ?",
    "DELETE FROM login_failures WHERE forget_at <= ?",
)


def sqlite_path(url: str) -> str:
    """The database path of a ``sqlite://`` URL; ``ConfigurationError`` if it names none.

    SQLAlchemy's spelling: ``sqlite:///relative.db``, ``sqlite:////absolute.db``, and
    ``sqlite://:memory:`` (or ``sqlite:///:memory:``) for a private in-memory database.
    """
    rest = url[len("sqlite://") :] if url[:9].lower() == "sqlite://" else None
    if rest in (":memory:", "/:memory:"):
        return ":memory:"
    if rest is None or not rest.startswith("/") or rest == "/":
        raise ConfigurationError(
            f"{url!r} is not a SQLite store URL "
            "(use sqlite:///relative/path.db or sqlite:////absolute/path.db)"
        )
    if "?" in rest or "#" in rest:
        raise ConfigurationError(f"{url!r}: SQLite store URLs take no query or fragment")
    return rest[1:]


def _storable(params: Sequence[Any]) -> bool:
    # sqlite3 cannot bind text that is not valid UTF-8 (lone surrogates); such text was never
    # stored, so lookups answer "not found" instead of failing.
    try:
        for value in params:
            if isinstance(value, str):
                value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _one(db: sqlite3.Connection, sql: str, params: Sequence[Any]) -> Any:
    return db.execute(sql, params).fetchone()


class SQLiteBase:
    """Connection, schema and error translation of ``SQLiteStore`` (the parts build on it)."""

    def __init__(
        self,
        url: str,
        *,
        clock: Clock | None = None,
        poll_interval: float = 0.2,
        lock_timeout: float = 5.0,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
    ) -> None:
        """``poll_interval``: seconds between two polls of the change log (the bus);
        ``lock_timeout``: seconds to wait for another process's write lock before
        ``StoreUnavailable``; ``synchronous``: see the module docstring."""
        if synchronous not in ("NORMAL", "FULL"):
            raise ConfigurationError("synchronous must be NORMAL or FULL")
        self.url = url
        self.path = sqlite_path(url)
        self._clock: Clock = clock or SystemClock()
        self._poll_interval = poll_interval
        self._last_poll_seconds: float | None = None  # how long the last poll read took
        self._lock_timeout = lock_timeout
        self._synchronous = synchronous
        self._db: sqlite3.Connection | None = None
        self._listeners: list[ChangeListener] = []
        self._poller: asyncio.Task[None] | None = None
        self._polled_seq = 0
        self._epoch: str | None = None  # of the log polled; see read_log
        self._reconcilers: list[Reconciler] = []
        self._reconcile_due = False  # after a failed poll or data loss, until reconciled
        self._delivered: set[int] = set()  # published here, not yet seen by the poller
        self._healthy_since: float | None = None

    # -- the one boundary where sqlite3 errors become authstate errors -------------------------
    async def _run(self, op: Callable[[sqlite3.Connection], T], begin: str | None = None) -> T:
        db = self._db
        if db is None:
            raise StoreUnavailable(reason="the SQLite store is not open")
        deadline = None  # set at the first busy answer: most calls never need it
        delay = 0.002
        while True:
            try:
                return _attempt(db, op, begin)
            except sqlite3.IntegrityError as exc:
                raise Conflict("the record already exists", reason=f"SQLite: {exc}") from None
            except sqlite3.Error as exc:
                now = time.monotonic()  # real time: a FrozenClock never moves
                if deadline is None:
                    deadline = now + self._lock_timeout
                if not _is_busy(exc) or now >= deadline:
                    raise StoreUnavailable(reason=f"SQLite {self.path}: {exc}") from exc
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    # -- lifecycle ----------------------------------------------------------------------------
    async def open(self) -> None:
        if self._db is not None:
            return
        self._db = self._connect()
        try:
            await self._run(self._init_connection)
            await self._run(self._init_schema, IMMEDIATE)
        except StoreUnavailable as exc:
            await self.close()
            if _is_busy(exc.__cause__):
                raise  # another process held the lock too long: transient, not configuration
            problem = exc.__cause__ or exc.reason
            raise ConfigurationError(
                f"cannot open the SQLite store {self.path!r}: {problem}"
            ) from None
        except BaseException:
            await self.close()
            raise

    def _connect(self) -> sqlite3.Connection:
        directory = os.path.dirname(self.path) or "."
        if self.path != ":memory:" and not os.path.isdir(directory):
            raise ConfigurationError(f"the SQLite store directory {directory!r} does not exist")
        try:
            # check_same_thread=False: the module is built thread-safe (serialised) and no
            # transaction is ever shared; closing from another thread must not fail.
            return sqlite3.connect(
                self.path,
                timeout=_BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise ConfigurationError(f"cannot open the SQLite store {self.path!r}: {exc}") from None

    def _init_connection(self, db: sqlite3.Connection) -> None:
        mode = _one(db, "PRAGMA journal_mode = WAL", ())[0]
        if self.path != ":memory:" and str(mode).lower() != "wal":
            raise ConfigurationError(f"the SQLite store {self.path!r} cannot use WAL mode")
        db.execute(f"PRAGMA synchronous = {self._synchronous}")  # one of two constants
        # Read pages straight from the operating system's cache instead of copying them
        # into SQLite's 2 MB one: at a million sessions the key index outgrows the latter
        # and a cold lookup cost 1.4x what it did at a thousand. Address space, not memory;
        # shared by every process on the file. SQLite caps it at its compile-time maximum.
        db.execute(f"PRAGMA mmap_size = {_MMAP_BYTES}")

    def _init_schema(self, db: sqlite3.Connection) -> None:
        version = _one(db, "PRAGMA user_version", ())[0]
        if version > SCHEMA_VERSION:
            raise ConfigurationError(
                f"the SQLite store {self.path!r} has schema version {version}; "
                f"this authstate knows up to {SCHEMA_VERSION} (upgrade authstate)"
            )
        if version < 1:
            for statement in SCHEMA:
                db.execute(statement)
        if version < 2:
            for statement in SCHEMA_V2:
                db.execute(statement)
        if version < 3:
            for statement in SCHEMA_V3:
                db.execute(statement)
        if version < SCHEMA_VERSION:
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")  # an int constant
        _make_epoch(db)

    async def close(self) -> None:
        poller, self._poller = self._poller, None
        if poller is not None:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        self._listeners.clear()
        self._reconcilers.clear()
        self._delivered.clear()
        self._healthy_since = None
        db, self._db = self._db, None
        if db is not None:
            db.close()

    async def ping(self) -> None:
        await self._run(lambda db: _one(db, "SELECT 1", ()))

    async def _fetchone(self, sql: str, *params: Any) -> Any:
        # Text sqlite3 cannot encode (lone surrogates) was never stored: nothing matches it.
        if not _storable(params):
            return None
        return await self._run(lambda db: db.execute(sql, params).fetchone())

    async def _fetchall(self, sql: str, *params: Any) -> list[Any]:
        if not _storable(params):
            return []
        return await self._run(lambda db: db.execute(sql, params).fetchall())

    async def _execute(self, sql: str, *params: Any) -> sqlite3.Cursor:
        return await self._run(lambda db: db.execute(sql, params))

    async def purge_expired(self, now: float) -> int:
        def op(db: sqlite3.Connection) -> int:
            return sum(db.execute(sql, (now,) * sql.count("?")).rowcount for sql in _PURGE)

        return await self._run(op, IMMEDIATE)


def _attempt(db: sqlite3.Connection, op: Callable[[sqlite3.Connection], T], begin: str | None) -> T:
    if begin is None:
        return op(db)
    db.execute(begin)
    try:
        result = op(db)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            # A failed rollback must not hide the error that caused it.
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
        raise
    return result


def _is_busy(exc: BaseException | None) -> bool:
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF  # extended codes keep the primary below
    return isinstance(exc, sqlite3.Error) and code in _BUSY_CODES


def _make_epoch(db: sqlite3.Connection) -> None:
    # The change log's epoch (stores.base): made with the file, or anew when it is missing.
    db.execute("CREATE TABLE IF NOT EXISTS log_epoch (id INTEGER PRIMARY KEY, epoch TEXT NOT NULL)")
    db.execute("INSERT OR IGNORE INTO log_epoch (id, epoch) VALUES (1, ?)", (new_epoch(),))


def _latest_seq(db: sqlite3.Connection) -> int:
    # sqlite_sequence keeps the highest seq ever issued, even after purge deleted the rows.
    row = _one(db, "SELECT seq FROM sqlite_sequence WHERE name = 'changes'", ())
    return 0 if row is None else int(row[0])
