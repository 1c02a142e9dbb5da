"""The store protocol: records, change events and the one async interface every backend implements.

A store sees only hashes, records and sealed bytes: never a raw session ID, refresh token or
private key. Every driver failure is translated to ``StoreUnavailable`` at the store's edge.

The *change log* is the store's half of the invalidation bus. ``publish()`` persists a
``Change`` (assigning it a sequence number) and broadcasts it to every node's listener;
``changes_since()`` lets a node catch up after a reconnect or at start.

Sequence numbers only mean something within one *log epoch*: a random id the store keeps next
to its counter and makes anew whenever it finds the log missing (an emptied Redis, a fresh
schema or file). ``read_log()`` returns the epoch and the head seq with the changes, so a node
notices when the store lost data (the epoch changed, or the head went below what the node
already delivered: a restored snapshot, a replica that was behind) and reconciles instead of
waiting, forever, for numbers it has already seen.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable


class ChangeKind(StrEnum):
    JTI = "jti"  # value: a revoked access token's jti; until: the token's exp
    SID = "sid"  # value: a revoked session/family handle; until: now + access TTL
    USER = "user"  # value: user id; generation: credentials below it are revoked
    SESSION = "session"  # value: a session key (hash) whose cached copy must be dropped
    KEYS = "keys"  # value: "" ; the key ring changed, reload it


@dataclass(frozen=True, slots=True)
class Change:
    kind: ChangeKind
    value: str
    until: float  # Unix seconds after which the entry may be forgotten
    generation: int = 0
    seq: int = 0  # assigned by the store on publish; 0 before


# ``read_log(LATEST)`` reads the epoch and head only (no change is numbered above it).
LATEST = 2**62


@dataclass(frozen=True, slots=True)
class LogRead:
    """One consistent read of the change log: its epoch, head seq and the changes asked for."""

    epoch: str  # random id made when the log was created (or found missing)
    head: int  # the highest seq issued in this epoch
    changes: list[Change]  # above the seq asked for, in seq order


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A server-side session (kind "session") or a hybrid refresh family (kind "refresh").

    ``key`` is the hex SHA-256 of the secret the client holds (the session ID, or the
    family's *current* refresh token) and is what the store indexes by.
    """

    key: str
    handle: str  # public random id: listings, DELETE /auth/sessions/{id}, the JWT "sid"
    user_id: str
    kind: str  # "session" or "refresh"
    created_at: float
    last_seen_at: float
    expires_at: float  # absolute expiry
    idle_timeout: float  # seconds; 0 disables idle expiry
    roles: tuple[str, ...] = ()
    user_agent: str = ""
    ip: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    # Hybrid only: the key this family had before its last rotation, and when it rotated.
    previous_key: str | None = None
    rotated_at: float | None = None
    generation: int = 0  # user's revocation generation when the session was created

    def idle_expires_at(self) -> float:
        return self.last_seen_at + self.idle_timeout if self.idle_timeout > 0 else self.expires_at

    def is_live(self, now: float) -> bool:
        return now < self.expires_at and now < self.idle_expires_at()


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A signing key as persisted: the private part sealed with the master secret."""

    kid: str
    alg: str
    sealed_private: bytes
    public_jwk: str  # JSON text of the public JWK ("" for HS256: nothing public)
    created_at: float
    retire_after: float | None = None  # stop verifying after this (Unix seconds); None = active


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: str
    username: str
    password_hash: str
    roles: tuple[str, ...] = ()
    created_at: float = 0.0
    disabled: bool = False


ChangeListener = Callable[[Change], None]
# Rebuilds a listener's state from the store (revocations, caches, keys). The bus awaits it
# after a reconnect and when the store lost data, before it reports itself healthy again.
Reconciler = Callable[[], Awaitable[None]]


@runtime_checkable
class Store(Protocol):
    """What every backend implements. All methods are coroutines and raise only
    ``StoreUnavailable`` (driver trouble), ``Conflict`` (uniqueness) or ``ConfigurationError``."""

    url_scheme: str

    # -- lifecycle ----------------------------------------------------------------------------
    async def open(self) -> None:
        """Connect and create or migrate the schema (idempotent, safe on concurrent starts)."""
        ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless the store answers now."""
        ...

    # -- sessions and refresh families ---------------------------------------------------------
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
        ``key`` in an earlier rotation (see ``authstate.rotation``)."""
        ...

    async def swap_refresh_key(
        self, family: SessionRecord, successor_key: str, *, now: float
    ) -> SessionRecord | None:
        """Compare-and-swap of a family's key, remembering the old one as consumed; None
        when the family is gone or its key is no longer ``family.key`` (see
        ``authstate.rotation.RefreshStore``)."""
        ...

    async def purge_expired(self, now: float) -> int:
        """Delete expired sessions, consumed refresh keys and change-log entries; return count."""
        ...

    # -- revocation state and the change log (the bus) -----------------------------------------
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

    async def bump_user_generation(self, user_id: str) -> int:
        """Increment and return the user's revocation generation (starts at 0)."""
        ...

    async def get_user_generation(self, user_id: str) -> int: ...

    # -- keys ---------------------------------------------------------------------------------
    async def save_key(self, key: StoredKey) -> None:
        """Insert a key; ``Conflict`` if the kid exists."""
        ...

    async def load_keys(self) -> list[StoredKey]:
        """All keys, oldest first."""
        ...

    async def retire_key(self, kid: str, retire_after: float) -> None: ...

    async def delete_key(self, kid: str) -> None: ...

    # -- users --------------------------------------------------------------------------------
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

    # -- login throttling (shared by all nodes) ------------------------------------------------
    async def count_failures(self, bucket: str, *, now: float, window: float) -> int:
        """Failures recorded for ``bucket`` within the last ``window`` seconds."""
        ...

    async def record_failure(self, bucket: str, *, now: float, window: float) -> int:
        """Record one failure; return the count within the window including it."""
        ...

    async def clear_failures(self, bucket: str) -> None: ...


StoreFactory = Callable[[str], Awaitable[Store]]
