"""The lifecycle events: one frozen dataclass per thing that happened to a user's
authentication state.

Events carry no secrets: never a password, a raw session ID, a refresh token or an access
token. A session is named by its public handle (``session_id``: the id of
``GET /auth/sessions`` and ``DELETE /auth/sessions/{id}``), a token by nothing at all.
``at`` is the Unix time (seconds) of the change. ``name`` is the short name the audit log
and the metrics use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthEvent:
    """The base of every event; subscribe to it to receive them all."""

    name: ClassVar[str] = "event"
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginSucceeded(AuthEvent):
    """Credentials were issued (``/auth/login``, ``auth.login()``, ``auth.login_response()``).

    ``session_id`` is the session or refresh family's public handle (None in stateless)."""

    name: ClassVar[str] = "login"
    user_id: str
    mode: str
    session_id: str | None
    ip: str | None
    user_agent: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginFailed(AuthEvent):
    """A password check failed. The username is left out on purpose: people type their
    password into the username field, and an event must never carry one."""

    name: ClassVar[str] = "login_failed"
    ip: str | None
    error: str  # the error code answered: "invalid_credentials"


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginThrottled(AuthEvent):
    """A login was refused without checking the password: too many failures (429)."""

    name: ClassVar[str] = "login_throttled"
    ip: str | None
    retry_after: int  # seconds, as in the Retry-After header


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedOut(AuthEvent):
    """One session, refresh family or token was revoked by its holder."""

    name: ClassVar[str] = "logout"
    user_id: str
    session_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedOutEverywhere(AuthEvent):
    """Every session and token of the user was revoked, on every node."""

    name: ClassVar[str] = "logout_all"
    user_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Refreshed(AuthEvent):
    """A hybrid refresh token was rotated (also a grace-window answer to a parallel tab)."""

    name: ClassVar[str] = "refresh"
    user_id: str
    session_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RefreshReuseDetected(AuthEvent):
    """A rotated refresh token came back after the grace window: theft is likely, and the
    whole family (``session_id``) was revoked."""

    name: ClassVar[str] = "refresh_reuse"
    user_id: str
    session_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRevoked(AuthEvent):
    """A session was revoked by handle (``DELETE /auth/sessions/{id}``)."""

    name: ClassVar[str] = "session_revoked"
    user_id: str
    session_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionEvicted(AuthEvent):
    """A login went past ``AUTHSTATE_MAX_SESSIONS_PER_USER``: the user's oldest session
    (``session_id``) was revoked on every node to make room."""

    name: ClassVar[str] = "session_evicted"
    user_id: str
    session_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PasswordChanged(AuthEvent):
    """A user's password changed (``POST /auth/password`` or ``authstate users passwd``);
    every other credential of the user was revoked."""

    name: ClassVar[str] = "password_changed"
    user_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UserDisabled(AuthEvent):
    """A user was disabled: logins refused, every credential revoked."""

    name: ClassVar[str] = "user_disabled"
    user_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyRotated(AuthEvent):
    """A new signing key signs from now on; older keys verify until their tokens expire."""

    name: ClassVar[str] = "key_rotated"
    kid: str
    alg: str


ALL_EVENTS: tuple[type[AuthEvent], ...] = (
    LoginSucceeded,
    LoginFailed,
    LoginThrottled,
    LoggedOut,
    LoggedOutEverywhere,
    Refreshed,
    RefreshReuseDetected,
    SessionRevoked,
    SessionEvicted,
    PasswordChanged,
    UserDisabled,
    KeyRotated,
)
