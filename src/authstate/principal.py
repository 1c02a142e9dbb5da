"""Immutable value objects describing who sent a request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Mode = Literal["stateless", "session", "hybrid"]


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """The server-side session (session mode) or refresh family (hybrid) behind a request."""

    id: str  # public handle, never the secret
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
    # Value the CSRF token is bound to: the session handle or the token's jti.
    binding: str = field(default="", repr=False)

    def has_role(self, role: str) -> bool:
        return role in self.roles
