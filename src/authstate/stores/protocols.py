"""The store protocols: one small protocol per concern.

A store offers the protocols it can, and a consumer depends only on the ones it uses
(``Accounts`` on users and throttling, the key ring on keys and the change log, a mode on
sessions, the change log and generations). ``base.Store`` is all of them together: what
``open_store`` returns and what the built-in backends implement, each backend module built
from one part per concern. Every protocol has its own contract suite in ``tests/stores/``.

All methods are coroutines (except ``bus_healthy_since``) and raise only
``StoreUnavailable`` (driver trouble), ``Conflict`` (uniqueness) or ``ConfigurationError``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Protocol, runtime_checkable

from authstate.stores.records import (
    Change,
    ChangeListener,
    LogRead,
    Reconciler,
    SessionRecord,
    StoredKey,
    UserGrants,
    UserRecord,
)


@runtime_checkable
class Lifecycle(Protocol):
    """Opening, closing and probing the backend."""

    url_scheme: str

    async def open(self) -> None:
        """Connect and create or migrate the schema (idempotent, safe on concurrent starts)."""
        ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless the store answers now."""
        ...

    async def purge_expired(self, now: float) -> int:
        """Delete expired sessions, consumed refresh keys and change-log entries; return count."""
        ...


@runtime_checkable
class SessionStore(Protocol):
    """Server-side sessions and hybrid refresh families, by hashed key or public handle.

    ``find_refresh`` and ``swap_refresh_key`` are the atomic steps of refresh rotation; the
    rule itself is ``authstate.rotation``."""

    async def create_session(self, record: SessionRecord) -> None:
        """Insert a new record; ``Conflict`` if the key or handle exists."""
        ...

    async def get_session(self, key: str) -> SessionRecord | None:
        """The record whose current key is ``key`` (expired ones may be returned; callers check)."""
        ...

    async def touch_session(self, key: str, last_seen_at: float) -> bool:
        """Record activity (idle expiry slides); False if the store has no session ``key``
        (callers must stop trusting a cached copy), True otherwise."""
        ...

    async def replace_session_key(
        self, old_key: str, new_key: str, *, roles: tuple[str, ...] | None = None
    ) -> SessionRecord | None:
        """Atomically move a session to a new key (fixation defence), optionally changing roles.

        Returns the updated record, or None if ``old_key`` is unknown (the old key stops working).
        """
        ...

    async def delete_session(self, key: str) -> SessionRecord | None:
        """Delete by key; return what was deleted."""
        ...

    async def delete_session_by_handle(
        self, handle: str, *, user_id: str | None = None
    ) -> SessionRecord | None:
        """Delete by public handle (only if owned by ``user_id`` when given)."""
        ...

    async def list_sessions(self, user_id: str, *, kind: str | None = None) -> list[SessionRecord]:
        """The user's records, newest first (expired ones excluded when ``purge`` ran)."""
        ...

    async def delete_user_sessions(
        self, user_id: str, *, except_handle: str | None = None
    ) -> list[SessionRecord]:
        """Delete every record of the user (but ``except_handle``); return the deleted ones."""
        ...

    async def find_refresh(self, key: str) -> SessionRecord | None:
        """The record whose current key is ``key``, or the refresh family that consumed
        ``key`` in an earlier rotation (expired ones may be returned: the rule checks)."""
        ...

    async def swap_refresh_key(
        self, family: SessionRecord, successor_key: str, *, now: float
    ) -> SessionRecord | None:
        """Atomically, if the stored record ``family.handle`` still has key ``family.key``:
        its key becomes ``successor_key``, ``previous_key`` the old key, ``rotated_at`` and
        ``last_seen_at`` = now, and the old key is remembered as consumed for as long as the
        family lives. Returns the updated record, or None when the record is gone or its key
        moved on (nothing written). ``Conflict`` if ``successor_key`` belongs to another."""
        ...


@runtime_checkable
class SessionDataStore(Protocol):
    """Each session's (or hybrid refresh family's) data: a JSON object stored with the record,
    found by its public handle (stable across key rotation), updated key by key.

    Concurrent updates: last writer wins, per key (``stores.session_data`` states the rule). Both
    methods may also raise ``TypeError``/``ValueError`` (a value that is not JSON) and
    ``SessionDataTooLarge``, always before anything is written."""

    async def get_session_data(self, handle: str) -> dict[str, Any] | None:
        """The data of the record ``handle`` as stored now, or None if there is no such record
        (an expired one may still answer until purged: callers check the session first)."""
        ...

    async def update_session_data(
        self,
        handle: str,
        changes: Mapping[str, Any],
        *,
        remove: Collection[str] = (),
        max_bytes: int,
    ) -> dict[str, Any] | None:
        """Atomically drop the keys ``remove`` and set ``changes`` in the data of record
        ``handle``, leaving every other key as stored at that moment; return the data after
        the update, or None (nothing written) when there is no such record.
        ``SessionDataTooLarge`` (nothing written) if the result would be over ``max_bytes``
        of compact UTF-8 JSON."""
        ...


@runtime_checkable
class ChangeBus(Protocol):
    """The change log and its delivery to every node (see ``records`` for epochs)."""

    async def publish(self, change: Change) -> Change:
        """Persist ``change`` (assigning ``seq``) and broadcast it to every listener."""
        ...

    async def changes_since(self, seq: int) -> list[Change]:
        """Changes with a sequence number above ``seq``, in order (for catch-up)."""
        ...

    async def read_log(self, seq: int) -> LogRead:
        """The log's epoch and head, and the changes above ``seq``, read together (one
        snapshot). Makes the epoch when the log has none (created, or found lost)."""
        ...

    async def active_revocations(self, now: float) -> tuple[list[Change], int]:
        """Every JTI/SID/USER change still in force, and the latest seq (for the start load)."""
        ...

    async def listen(
        self, listener: ChangeListener, *, reconcile: Reconciler | None = None
    ) -> None:
        """Start delivering every published change (from any node) to ``listener``.

        ``reconcile`` is awaited after every bus interruption and whenever the log's epoch
        changed or its head went back (data loss), before the bus reports itself healthy;
        on data loss the changes of the old epoch that were never delivered are skipped, so
        a listener that must not miss any passes one."""
        ...

    def bus_healthy_since(self) -> float | None:
        """Monotonic time up to which the bus is known to have delivered everything, or None
        if it is disconnected now. Used for the staleness bound."""
        ...

    def bus_lag(self) -> float | None:
        """Seconds a change published now would take to reach this node's listeners, as
        last measured on the listening path (Redis: PING to PONG on the subscribed
        connection; PostgreSQL: a catch-up read and ``SELECT 1`` on the listening
        connection; SQLite: the poll interval plus the last poll; memory: 0). None while
        nothing was measured yet or the bus is down."""
        ...

    def describe_bus(self) -> str:
        """How changes travel between nodes, in a few words, for reports and the banner
        (e.g. ``"pub/sub, catch-up every 1 s"``)."""
        ...


@runtime_checkable
class Generations(Protocol):
    """Per-user revocation generations: credentials below a user's generation are revoked."""

    async def bump_user_generation(self, user_id: str) -> int:
        """Increment and return the user's revocation generation (starts at 0)."""
        ...

    async def get_user_generation(self, user_id: str) -> int: ...


@runtime_checkable
class KeyStore(Protocol):
    """Signing keys, the private part sealed with the master secret."""

    async def save_key(self, key: StoredKey) -> None:
        """Insert a key; ``Conflict`` if the kid exists."""
        ...

    async def load_keys(self) -> list[StoredKey]:
        """All keys, oldest first."""
        ...

    async def retire_key(self, kid: str, retire_after: float) -> None: ...

    async def delete_key(self, kid: str) -> None: ...


@runtime_checkable
class UserStore(Protocol):
    """The built-in user accounts."""

    async def create_user(self, user: UserRecord) -> None:
        """``Conflict`` if the id or username exists."""
        ...

    async def get_user(self, user_id: str) -> UserRecord | None: ...

    async def get_user_by_name(self, username: str) -> UserRecord | None: ...

    async def list_users(self) -> list[UserRecord]: ...

    async def update_user(
        self,
        user_id: str,
        *,
        password_hash: str | None = None,
        roles: tuple[str, ...] | None = None,
        disabled: bool | None = None,
    ) -> UserRecord | None: ...


@runtime_checkable
class LoginThrottle(Protocol):
    """Login-failure counters shared by every node."""

    async def count_failures(self, bucket: str, *, now: float, window: float) -> int:
        """Failures recorded for ``bucket`` within the last ``window`` seconds."""
        ...

    async def record_failure(self, bucket: str, *, now: float, window: float) -> int:
        """Record one failure; return the count within the window including it."""
        ...

    async def clear_failures(self, bucket: str) -> None: ...


@runtime_checkable
class GrantStore(Protocol):
    """Live roles and claims: a per-user record, and every session or refresh family of the
    user rewritten in place with it (session data is never touched)."""

    async def set_user_grants(
        self,
        user_id: str,
        *,
        roles: tuple[str, ...] | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> UserGrants:
        """Atomically: replace the user's roles and/or claims (None keeps the current value),
        increment the user's roles version (starts at 0), and write the roles, claims and
        version into every session and refresh family of the user. Returns the new grants."""
        ...

    async def get_user_grants(self, user_id: str) -> UserGrants | None:
        """The user's grants, or None if ``set_user_grants`` never ran for the user."""
        ...
