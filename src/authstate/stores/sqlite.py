"""The SQLite store: one database file shared by the server processes of one machine.

Durability (DESIGN §7: a SIGKILLed server loses no committed session). The journal is WAL
with ``synchronous=NORMAL``: a commit has written its WAL frames to the operating system
before the call returns, so the data survives the process being killed; only an OS crash
or power loss can drop the last few commits (never corrupt the file). ``FULL`` would add
an fsync per commit, milliseconds on the event loop per login, against a failure the
design does not ask us to survive; pass ``synchronous="FULL"`` to pay for it.

No thread hop: every call runs sqlite3 directly on the event loop. Operations are
sub-millisecond local file operations, cheaper than handing them to a thread. One store
has one connection, and each operation is a synchronous function that runs start to
finish without awaiting, so the operations of one store never interleave. Processes are
serialised by SQLite's write lock: read-modify-write operations take it up front with
``BEGIN IMMEDIATE``. A busy lock is waited for briefly inside SQLite (``busy_timeout``),
then retried with ``asyncio.sleep`` so the loop keeps serving, up to ``lock_timeout``
seconds, and then reported as ``StoreUnavailable``.

The bus is a poll of the ``changes`` table every ``poll_interval`` seconds. Sequence
numbers come from ``AUTOINCREMENT`` under the write lock, so they commit in order and a
poller never skips one; ``bus_healthy_since()`` is the time of the last successful poll.
Each poll also reads the log's epoch (table ``log_epoch``) and head: an older copy of the
file put back, or a new file, is data loss, handled as the server buses do (``_bus``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Literal, TypeVar

from authstate._time import Clock, SystemClock
from authstate.errors import ConfigurationError, Conflict, StoreUnavailable
from authstate.stores._bus import log_went_back, new_epoch
from authstate.stores.base import (
    LATEST,
    Change,
    ChangeKind,
    ChangeListener,
    LogRead,
    Reconciler,
    SessionRecord,
    StoredKey,
    UserRecord,
)

T = TypeVar("T")
log = logging.getLogger("authstate")

IMMEDIATE = "BEGIN IMMEDIATE"  # take the write lock now: the read that follows is current
SNAPSHOT = "BEGIN"  # several reads that must agree with each other
# Waited inside SQLite (blocking the loop) before we back off asynchronously; short on purpose.
_BUSY_TIMEOUT_MS = 10
_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)

SCHEMA_VERSION = 1
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

_SESSION_SELECT = (
    "SELECT session_key, handle, user_id, kind, created_at, last_seen_at, expires_at,"
    " idle_timeout, roles, user_agent, ip, data, previous_key, rotated_at, generation"
    " FROM sessions"
)
_MMAP_BYTES = 1 << 30  # 1 GiB: about two million sessions
_SESSION_BY_KEY = _SESSION_SELECT + " WHERE session_key = ?"
_SESSION_BY_HANDLE = _SESSION_SELECT + " WHERE handle = ?"
_SESSIONS_OF_USER = _SESSION_SELECT + " WHERE user_id = ? ORDER BY created_at DESC, id DESC"
_INSERT_SESSION = (
    "INSERT INTO sessions (session_key, handle, user_id, kind, created_at, last_seen_at,"
    " expires_at, idle_timeout, roles, user_agent, ip, data, previous_key, rotated_at,"
    " generation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# Compare-and-swap: only while the family still has the key the caller found.
_SWAP = (
    "UPDATE sessions SET session_key = ?, previous_key = session_key, rotated_at = ?,"
    " last_seen_at = ? WHERE handle = ? AND session_key = ?"
)
_CONSUME = (
    "INSERT OR REPLACE INTO consumed_keys (consumed_key, handle, expires_at) VALUES (?, ?, ?)"
)
# The family whose current key is the key, else the one that consumed it (constants only).
_CONSUMER = "(SELECT handle FROM consumed_keys WHERE consumed_key = ?1)"
_FIND_REFRESH = _SESSION_SELECT + " WHERE session_key = ?1 OR handle = " + _CONSUMER
_PURGE = (
    "DELETE FROM sessions WHERE expires_at <= ?"
    " OR (idle_timeout > 0 AND last_seen_at + idle_timeout <= ?)",
    "DELETE FROM consumed_keys WHERE expires_at <= ?",
    # AUTOINCREMENT never reuses a seq, even once every row is gone: pollers never go back.
    "DELETE FROM changes WHERE until < ?",
    "DELETE FROM login_failures WHERE forget_at <= ?",
)
_BUMP_GENERATION = (
    "INSERT INTO user_generations (user_id, generation) VALUES (?, 1)"
    " ON CONFLICT (user_id) DO UPDATE SET generation = generation + 1"
)
_GENERATION = "SELECT generation FROM user_generations WHERE user_id = ?"
_COUNT_FAILURES = "SELECT COUNT(*) FROM login_failures WHERE bucket = ? AND at > ?"
_USER_SELECT = "SELECT id, username, password_hash, roles, created_at, disabled FROM users"
_KEY_SELECT = (
    "SELECT kid, alg, sealed_private, public_jwk, created_at, retire_after FROM signing_keys"
)
_CHANGES_SINCE = (
    "SELECT seq, kind, value, until, generation FROM changes WHERE seq > ? ORDER BY seq"
)
_ACTIVE_REVOCATIONS = (
    "SELECT seq, kind, value, until, generation FROM changes"
    " WHERE kind IN ('jti', 'sid', 'user') AND until >= ? ORDER BY seq"
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


def _session_row(r: SessionRecord) -> tuple[Any, ...]:
    return (
        *(r.key, r.handle, r.user_id, r.kind, r.created_at, r.last_seen_at, r.expires_at),
        *(r.idle_timeout, json.dumps(list(r.roles)), r.user_agent, r.ip, json.dumps(dict(r.data))),
        *(r.previous_key, r.rotated_at, r.generation),
    )


def _session(row: Sequence[Any]) -> SessionRecord:
    return SessionRecord(
        key=row[0],
        handle=row[1],
        user_id=row[2],
        kind=row[3],
        created_at=row[4],
        last_seen_at=row[5],
        expires_at=row[6],
        idle_timeout=row[7],
        roles=tuple(json.loads(row[8])),
        user_agent=row[9],
        ip=row[10],
        data=json.loads(row[11]),
        previous_key=row[12],
        rotated_at=row[13],
        generation=row[14],
    )


def _user(row: Sequence[Any]) -> UserRecord:
    return UserRecord(row[0], row[1], row[2], tuple(json.loads(row[3])), row[4], bool(row[5]))


def _key(row: Sequence[Any]) -> StoredKey:
    return StoredKey(row[0], row[1], bytes(row[2]), row[3], row[4], row[5])


def _change(row: Sequence[Any]) -> Change:
    return Change(ChangeKind(row[1]), row[2], row[3], row[4], row[0])


def _one(db: sqlite3.Connection, sql: str, params: Sequence[Any]) -> Any:
    return db.execute(sql, params).fetchone()


class SQLiteStore:
    """A ``Store`` in one SQLite file, safe for several processes on one machine.

    ``SessionRecord.data`` must be JSON-serialisable (``TypeError`` otherwise). Text that is
    not valid Unicode (a lone surrogate) cannot be stored: lookups of it find nothing and
    writes of it raise ``ValueError``.
    """

    url_scheme = "sqlite"

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
        deadline = time.monotonic() + self._lock_timeout  # real time: a FrozenClock never moves
        delay = 0.002
        while True:
            try:
                return _attempt(db, op, begin)
            except sqlite3.IntegrityError as exc:
                raise Conflict("the record already exists", reason=f"SQLite: {exc}") from None
            except sqlite3.Error as exc:
                if not _is_busy(exc) or time.monotonic() >= deadline:
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
        if version < SCHEMA_VERSION:
            for statement in SCHEMA:
                db.execute(statement)
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
        return await self._run(lambda db: _one(db, sql, params)) if _storable(params) else None

    async def _fetchall(self, sql: str, *params: Any) -> list[Any]:
        if not _storable(params):
            return []
        return await self._run(lambda db: db.execute(sql, params).fetchall())

    async def _execute(self, sql: str, *params: Any) -> sqlite3.Cursor:
        return await self._run(lambda db: db.execute(sql, params))

    # -- sessions and refresh families ---------------------------------------------------------
    async def create_session(self, record: SessionRecord) -> None:
        await self._execute(_INSERT_SESSION, *_session_row(record))

    async def get_session(self, key: str) -> SessionRecord | None:
        row = await self._fetchone(_SESSION_BY_KEY, key)
        return None if row is None else _session(row)

    async def touch_session(self, key: str, last_seen_at: float) -> bool:
        # MAX: nodes write last_seen throttled and possibly out of order; never go backwards.
        sql = "UPDATE sessions SET last_seen_at = MAX(last_seen_at, ?) WHERE session_key = ?"
        if not _storable((key,)):
            return False
        return (await self._execute(sql, last_seen_at, key)).rowcount > 0

    async def replace_session_key(
        self, old_key: str, new_key: str, *, roles: tuple[str, ...] | None = None
    ) -> SessionRecord | None:
        def op(db: sqlite3.Connection) -> SessionRecord | None:
            row = _one(db, _SESSION_BY_KEY, (old_key,))
            if row is None:
                return None
            record = _session(row)
            updated = replace(record, key=new_key, roles=record.roles if roles is None else roles)
            sql = "UPDATE sessions SET session_key = ?, roles = ? WHERE handle = ?"
            db.execute(sql, (new_key, json.dumps(list(updated.roles)), record.handle))
            return updated

        return await self._run(op, IMMEDIATE) if _storable((old_key,)) else None

    async def delete_session(self, key: str) -> SessionRecord | None:
        return await self._delete_one(_SESSION_BY_KEY, key, owner=None)

    async def delete_session_by_handle(
        self, handle: str, *, user_id: str | None = None
    ) -> SessionRecord | None:
        return await self._delete_one(_SESSION_BY_HANDLE, handle, owner=user_id)

    async def _delete_one(self, sql: str, value: str, owner: str | None) -> SessionRecord | None:
        def op(db: sqlite3.Connection) -> SessionRecord | None:
            row = _one(db, sql, (value,))
            if row is None or (owner is not None and row[2] != owner):
                return None
            db.execute("DELETE FROM sessions WHERE handle = ?", (row[1],))
            return _session(row)

        return await self._run(op, IMMEDIATE) if _storable((value, owner or "")) else None

    async def list_sessions(self, user_id: str, *, kind: str | None = None) -> list[SessionRecord]:
        records = [_session(row) for row in await self._fetchall(_SESSIONS_OF_USER, user_id)]
        return [r for r in records if kind is None or r.kind == kind]

    async def delete_user_sessions(
        self, user_id: str, *, except_handle: str | None = None
    ) -> list[SessionRecord]:
        def op(db: sqlite3.Connection) -> list[SessionRecord]:
            rows = db.execute(_SESSIONS_OF_USER, (user_id,)).fetchall()
            doomed = [_session(row) for row in rows if row[1] != except_handle]
            db.executemany("DELETE FROM sessions WHERE handle = ?", [(r.handle,) for r in doomed])
            return doomed

        return await self._run(op, IMMEDIATE) if _storable((user_id,)) else []

    async def find_refresh(self, key: str) -> SessionRecord | None:
        row = await self._fetchone(_FIND_REFRESH, key)
        return None if row is None else _session(row)

    async def swap_refresh_key(
        self, family: SessionRecord, successor_key: str, *, now: float
    ) -> SessionRecord | None:
        def op(db: sqlite3.Connection) -> SessionRecord | None:
            swapped = db.execute(_SWAP, (successor_key, now, now, family.handle, family.key))
            if swapped.rowcount == 0:
                return None  # the family is gone or its key moved on: the caller looks again
            row = _one(db, _SESSION_BY_HANDLE, (family.handle,))
            db.execute(_CONSUME, (family.key, family.handle, row[6]))
            return _session(row)

        return await self._run(op, IMMEDIATE) if _storable((family.key,)) else None

    async def purge_expired(self, now: float) -> int:
        def op(db: sqlite3.Connection) -> int:
            return sum(db.execute(sql, (now,) * sql.count("?")).rowcount for sql in _PURGE)

        return await self._run(op, IMMEDIATE)

    # -- revocation state and the change log (the bus) -----------------------------------------
    async def publish(self, change: Change) -> Change:
        sql = "INSERT INTO changes (kind, value, until, generation) VALUES (?, ?, ?, ?)"
        cursor = await self._execute(
            sql, change.kind.value, change.value, change.until, change.generation
        )
        stored = replace(change, seq=int(cursor.lastrowid or 0))
        if self._poller is not None:
            self._delivered.add(stored.seq)  # the poller will see it too: deliver it once
        self._deliver(stored)
        return stored

    async def changes_since(self, seq: int) -> list[Change]:
        return [_change(row) for row in await self._fetchall(_CHANGES_SINCE, seq)]

    async def active_revocations(self, now: float) -> tuple[list[Change], int]:
        def op(db: sqlite3.Connection) -> tuple[list[Change], int]:
            rows = db.execute(_ACTIVE_REVOCATIONS, (now,)).fetchall()
            return [_change(row) for row in rows], _latest_seq(db)

        return await self._run(op, SNAPSHOT)

    async def read_log(self, seq: int) -> LogRead:
        def op(db: sqlite3.Connection) -> LogRead | None:
            try:
                row = _one(db, "SELECT epoch FROM log_epoch WHERE id = 1", ())
            except sqlite3.OperationalError as exc:
                if _is_busy(exc):
                    raise
                row = None  # no such table: a file restored from before epochs existed
            if row is None:
                return None
            rows = [] if seq >= LATEST else db.execute(_CHANGES_SINCE, (seq,)).fetchall()
            return LogRead(str(row[0]), _latest_seq(db), [_change(r) for r in rows])

        read = await self._run(op, SNAPSHOT)
        if read is None:
            await self._run(_make_epoch, IMMEDIATE)
            read = await self._run(op, SNAPSHOT)
        if read is None:
            raise StoreUnavailable(reason=f"SQLite {self.path}: the change log has no epoch")
        return read

    async def listen(
        self, listener: ChangeListener, *, reconcile: Reconciler | None = None
    ) -> None:
        self._listeners.append(listener)
        if reconcile is not None:
            self._reconcilers.append(reconcile)
        if self._poller is None:
            started = self._clock.monotonic()
            head = await self.read_log(LATEST)
            self._polled_seq, self._epoch = head.head, head.epoch
            self._healthy_since = started
            self._poller = asyncio.create_task(self._poll_loop(), name="authstate-sqlite-bus")

    def bus_healthy_since(self) -> float | None:
        return self._healthy_since

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval)
            started = self._clock.monotonic()
            try:
                await self._poll()
            except Exception:
                if self._healthy_since is not None:
                    log.warning("SQLite change log poll failed", exc_info=True)
                self._healthy_since = None  # fail closed until a poll succeeds again
                self._reconcile_due = True  # and rebuild from the store before it does
                continue
            self._healthy_since = started

    async def _poll(self) -> None:
        """Deliver the changes above the polled seq; reconcile first when due or when the
        file lost data (an older copy put back: the head went below the polled seq, or a
        new file: another epoch). Raises store and reconciler errors."""
        read = await self.read_log(self._polled_seq)
        lost = log_went_back(read, self._epoch, self._polled_seq)
        if lost:
            log.warning(
                "the SQLite change log went back (epoch %s seq %d -> epoch %s head %d): the"
                " store lost data; reconciling and following the new log",
                self._epoch,
                self._polled_seq,
                read.epoch,
                read.head,
            )
            self._reconcile_due = True
            self._healthy_since = None  # caches may hold what the file lost: bypass them
        if self._reconcile_due:
            for reconcile in list(self._reconcilers):
                await reconcile()
            self._reconcile_due = False
        if lost:
            # The reconcilers read the file after ``read``: they cover its changes.
            self._epoch, self._polled_seq = read.epoch, read.head
            self._delivered.clear()
            return
        self._epoch = read.epoch
        for change in read.changes:
            self._polled_seq = max(self._polled_seq, change.seq)
            if change.seq not in self._delivered:
                self._deliver(change)
        # Published here and now seen (or purged before we looked): forget them.
        self._delivered = {seq for seq in self._delivered if seq > self._polled_seq}

    def _deliver(self, change: Change) -> None:
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:
                # One broken listener must not stop delivery to the others or kill the bus.
                log.exception("change listener failed")

    async def bump_user_generation(self, user_id: str) -> int:
        def op(db: sqlite3.Connection) -> int:
            db.execute(_BUMP_GENERATION, (user_id,))
            return int(_one(db, _GENERATION, (user_id,))[0])

        return await self._run(op, IMMEDIATE)

    async def get_user_generation(self, user_id: str) -> int:
        row = await self._fetchone(_GENERATION, user_id)
        return 0 if row is None else int(row[0])

    # -- keys ---------------------------------------------------------------------------------
    async def save_key(self, key: StoredKey) -> None:
        await self._execute(
            "INSERT INTO signing_keys (kid, alg, sealed_private, public_jwk, created_at,"
            " retire_after) VALUES (?, ?, ?, ?, ?, ?)",
            *(key.kid, key.alg, key.sealed_private, key.public_jwk, key.created_at),
            key.retire_after,
        )

    async def load_keys(self) -> list[StoredKey]:
        return [
            _key(row) for row in await self._fetchall(_KEY_SELECT + " ORDER BY created_at, rowid")
        ]

    async def retire_key(self, kid: str, retire_after: float) -> None:
        await self._execute(
            "UPDATE signing_keys SET retire_after = ? WHERE kid = ?", retire_after, kid
        )

    async def delete_key(self, kid: str) -> None:
        await self._execute("DELETE FROM signing_keys WHERE kid = ?", kid)

    # -- users --------------------------------------------------------------------------------
    async def create_user(self, user: UserRecord) -> None:
        await self._execute(
            "INSERT INTO users (id, username, password_hash, roles, created_at, disabled)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            *(user.id, user.username, user.password_hash, json.dumps(list(user.roles))),
            *(user.created_at, int(user.disabled)),
        )

    async def get_user(self, user_id: str) -> UserRecord | None:
        row = await self._fetchone(_USER_SELECT + " WHERE id = ?", user_id)
        return None if row is None else _user(row)

    async def get_user_by_name(self, username: str) -> UserRecord | None:
        row = await self._fetchone(_USER_SELECT + " WHERE username = ?", username)
        return None if row is None else _user(row)

    async def list_users(self) -> list[UserRecord]:
        return [_user(row) for row in await self._fetchall(_USER_SELECT + " ORDER BY username")]

    async def update_user(
        self,
        user_id: str,
        *,
        password_hash: str | None = None,
        roles: tuple[str, ...] | None = None,
        disabled: bool | None = None,
    ) -> UserRecord | None:
        def op(db: sqlite3.Connection) -> UserRecord | None:
            row = _one(db, _USER_SELECT + " WHERE id = ?", (user_id,))
            if row is None:
                return None
            user = _user(row)
            new = replace(
                user,
                password_hash=user.password_hash if password_hash is None else password_hash,
                roles=user.roles if roles is None else tuple(roles),
                disabled=user.disabled if disabled is None else disabled,
            )
            sql = "UPDATE users SET password_hash = ?, roles = ?, disabled = ? WHERE id = ?"
            db.execute(sql, (new.password_hash, json.dumps(list(new.roles)), new.disabled, user_id))
            return new

        return await self._run(op, IMMEDIATE) if _storable((user_id,)) else None

    # -- login throttling ---------------------------------------------------------------------
    async def count_failures(self, bucket: str, *, now: float, window: float) -> int:
        row = await self._fetchone(_COUNT_FAILURES, bucket, now - window)
        return 0 if row is None else int(row[0])

    async def record_failure(self, bucket: str, *, now: float, window: float) -> int:
        def op(db: sqlite3.Connection) -> int:
            sql = "INSERT INTO login_failures (bucket, at, forget_at) VALUES (?, ?, ?)"
            db.execute(sql, (bucket, now, now + window))
            return int(_one(db, _COUNT_FAILURES, (bucket, now - window))[0])

        return await self._run(op, IMMEDIATE)

    async def clear_failures(self, bucket: str) -> None:
        if _storable((bucket,)):
            await self._execute("DELETE FROM login_failures WHERE bucket = ?", bucket)


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
