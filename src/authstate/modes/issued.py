"""What a login, a refresh or a rotation hands back to the HTTP layer."""

from __future__ import annotations

from dataclasses import dataclass, field

from authstate.principal import Principal


@dataclass(frozen=True, slots=True)
class IssuedCredentials:
    """What a login or refresh hands back; the ASGI layer turns it into cookies."""

    principal: Principal
    auth_value: str  # value of the auth cookie: a JWT or a session ID
    auth_max_age: int  # seconds
    expires_at: float  # when the auth credential expires (Unix seconds)
    refresh_value: str | None = field(default=None, repr=False)
    refresh_max_age: int = 0
    # Remember-me: False writes every cookie as a browser-session cookie (no Max-Age).
    remember: bool = True
