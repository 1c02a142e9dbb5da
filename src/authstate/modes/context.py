"""The dependencies a mode is built with."""

from __future__ import annotations

from dataclasses import dataclass, field

from authstate._time import Clock
from authstate.events import Subscribers
from authstate.key_storage import KeyManager
from authstate.modes.freshness import Freshness
from authstate.revocation import RevocationState
from authstate.session_cache import SessionCache
from authstate.settings import Settings
from authstate.stores.base import Store


@dataclass
class ModeContext:
    """Everything a mode needs, built once by ``AuthState``."""

    settings: Settings
    store: Store
    clock: Clock
    keys: KeyManager
    revocation: RevocationState
    sessions: SessionCache
    freshness: Freshness
    refresh_key: bytes = field(repr=False)  # derives a refresh token's successor
    # Lifecycle events (AuthState's subscribers): a mode emits the ones only it can see.
    events: Subscribers = field(default_factory=Subscribers)
