"""Immutable value objects describing who sent a request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

_NO_CLAIMS: Mapping[str, Any] = MappingProxyType({})

Mode = Literal["stateless", "session", "hybrid"]


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """The server-side session (session mode) or refresh family (hybrid) behind a request."""

    id: str  # the session handle (public, random; the JWT's "sid"), never the secret
    expires_at: float  # Unix seconds


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """The access JWT behind a request (stateless and hybrid modes)."""

    jti: str
    iat: int
    exp: int
    kid: str


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user, as established from the auth cookie."""

    user_id: str
    roles: tuple[str, ...]
    mode: Mode
    session: SessionInfo | None = None
    token: TokenInfo | None = None
    # The application's custom claims (``AuthState.set_claims``), read-only.
    claims: Mapping[str, Any] = field(default_factory=lambda: _NO_CLAIMS, hash=False)
    # Step-up: when the user last proved their password (login, reauth, password change),
    # Unix seconds; None when unknown (a token minted without it), which is never fresh.
    auth_time: int | None = None
    # Remember-me: False when this login's cookies are browser-session cookies.
    remember: bool = True

    @property
    def binding(self) -> str:
        """What this principal's CSRF tokens are bound to, derived rather than stored: the
        token's ``jti`` in stateless mode (each token stands alone there), else the session
        handle (``session.id``); "" when there is neither."""
        if self.mode == "stateless" or self.session is None:
            return "" if self.token is None else self.token.jti
        return self.session.id

    def has_role(self, role: str) -> bool:
        return role in self.roles

    def authenticated_within(self, seconds: float, *, now: float) -> bool:
        """Whether the last password check is at most ``seconds`` old at ``now`` (Unix
        seconds); False when unknown. A check dated in the future (clock skew between
        nodes) counts as just now."""
        return self.auth_time is not None and now - self.auth_time <= seconds
