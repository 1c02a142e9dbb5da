"""The records a store keeps and passes around: sessions and refresh families, change-log
entries, signing keys and users. Plain frozen data; the protocols are in ``protocols``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ChangeKind(StrEnum):
    JTI = "jti"  # value: a revoked access token's jti; until: the token's exp
    SID = "sid"  # value: a revoked session/family handle; until: now + access TTL
    USER = "user"  # value: user id; generation: credentials below it are revoked
    SESSION = "session"  # value: a session key (hash) whose cached copy must be dropped
    KEYS = "keys"  # value: "" ; the key ring changed, reload it
    # value: user id; generation: the user's roles version (``set_user_grants``): credentials
    # carrying an older one carry outdated roles or claims; until: as for USER
    ROLES = "roles"
    # value: user id; a session or refresh family of the user was created (a login on any
    # node). Revokes nothing: it tells live session lists (``/auth/ws``) to re-read.
    LOGIN = "login"
    # A kind this node does not know, written by a newer one during a rolling upgrade: it is
    # read in sequence (the log's order is kept) and acted on by nobody. Never published.
    UNKNOWN = "unknown"

    @classmethod
    def _missing_(cls, value: object) -> ChangeKind:
        return cls.UNKNOWN


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
    # Live roles (``set_user_grants``): the application's custom claims and the user's roles
    # version the record's roles and claims were written under.
    claims: Mapping[str, Any] = field(default_factory=dict)
    roles_version: int = 0
    # Step-up: when the user last proved their password (Unix seconds; 0 = at created_at).
    auth_time: float = 0.0
    # Remember-me: False = the cookies are browser-session cookies (no Max-Age/Expires),
    # kept through every rotation; the server-side lifetime is the same either way.
    remember: bool = True

    def idle_expires_at(self) -> float:
        return self.last_seen_at + self.idle_timeout if self.idle_timeout > 0 else self.expires_at

    def is_live(self, now: float) -> bool:
        return now < self.expires_at and now < self.idle_expires_at()

    def authenticated_at(self) -> float:
        """When the user last checked their password for this session (Unix seconds)."""
        return self.auth_time or self.created_at


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


@dataclass(frozen=True, slots=True)
class UserGrants:
    """A user's live roles and custom claims (``set_user_grants``), and their version: the
    count of changes so far. ``roles`` is None until roles were set this way (logins then
    use the roles the application passes)."""

    user_id: str
    version: int
    roles: tuple[str, ...] | None
    claims: Mapping[str, Any]


ChangeListener = Callable[[Change], None]
# Rebuilds a listener's state from the store (revocations, caches, keys). The bus awaits it
# after a reconnect and when the store lost data, before it reports itself healthy again.
Reconciler = Callable[[], Awaitable[None]]
