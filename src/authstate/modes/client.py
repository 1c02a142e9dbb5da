"""Where a login or refresh came from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """Where a login or refresh came from; stored with the session for the user's listing."""

    user_agent: str = ""
    ip: str = ""
