"""``Node``: what every ``AuthCore`` operation reads. The settings, clock, cookie policy and
event subscribers made at construction; the parts ``start()`` builds (``RunningParts``) and
their accessors; the one way an operation reports itself (``_emit``); what the node hands
out (CSRF tokens, its public keys, a new signing key).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

from authstate._time import Clock, SystemClock
from authstate.accounts import Accounts
from authstate.cookies import CookiePolicy
from authstate.csrf import CSRFProtector
from authstate.errors import InvalidCredentials, TooManyAttempts
from authstate.events import (
    AuthEvent,
    KeyRotated,
    LoginFailed,
    LoginThrottled,
    Subscriber,
    Subscribers,
    audit_log,
)
from authstate.modes.access_tokens import AccessTokens
from authstate.modes.base import BaseMode
from authstate.modes.context import ModeContext
from authstate.passwords import PasswordHasher
from authstate.settings import Settings
from authstate.stores.base import Store
from authstate.telemetry import StoreStats

E = TypeVar("E", bound=AuthEvent)


@dataclass(frozen=True, slots=True)
class RunningParts:
    """What ``start()`` builds: every part that exists only while the node runs."""

    context: ModeContext
    tokens: AccessTokens
    mode: BaseMode
    csrf: CSRFProtector
    accounts: Accounts


class Node:
    """The state every operation of ``AuthCore`` reads; ``AuthCore`` adds the operations."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        store: Store | str | None = None,
        clock: Clock | None = None,
        password_hasher: PasswordHasher | None = None,
        **overrides: Any,
    ) -> None:
        """``overrides`` are Settings fields (``mode="session"``...); with no ``settings`` they
        are applied over ``AUTHSTATE_*`` and the defaults. ``store`` is a store URL (a setting
        like the others) or a ready ``Store`` object; an object needs ``secret=`` (or
        ``AUTHSTATE_SECRET``) unless it is a memory store.

        Raises ``ConfigurationError`` for a bad setting."""
        if isinstance(store, str):
            overrides["store"] = store
            store = None
        if settings is None:
            settings = Settings.from_env(**overrides)
        elif overrides:
            raise TypeError("pass settings or keyword settings, not both")
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.cookie_policy = CookiePolicy.from_settings(self.settings)
        self._store = store
        self._hasher = password_hasher
        self._started = False
        self._start_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._parts: RunningParts | None = None
        # Lifecycle events: subscribers may be added before start(). The audit log is one.
        self.events = Subscribers()
        self.events.subscribe(audit_log)
        # Latency of every store call, for the metrics (authstate.metrics.Collector).
        self.store_stats = StoreStats()

    @property
    def started(self) -> bool:
        return self._started

    # -- accessors -----------------------------------------------------------------------------
    def _not_started(self) -> NoReturn:
        # The one check behind every accessor of a part that start() builds.
        raise RuntimeError("AuthState.start() has not run")

    # One property call each, as before the parts were gathered: the middleware reads
    # ``auth.mode`` on every request.
    @property
    def context(self) -> ModeContext:
        return (self._parts or self._not_started()).context

    @property
    def mode(self) -> BaseMode:
        return (self._parts or self._not_started()).mode

    @property
    def tokens(self) -> AccessTokens:
        return (self._parts or self._not_started()).tokens

    @property
    def accounts(self) -> Accounts:
        return (self._parts or self._not_started()).accounts

    @property
    def csrf(self) -> CSRFProtector:
        return (self._parts or self._not_started()).csrf

    @property
    def store(self) -> Store:
        return self.context.store

    # -- lifecycle events --------------------------------------------------------------------
    def subscribe(
        self, subscriber: Subscriber, *event_types: type[AuthEvent]
    ) -> Callable[[], None]:
        """Call ``subscriber(event)`` (a function or an ``async`` function) for each event of
        ``event_types`` (default: all), after the change is durable. Returns a function that
        unsubscribes. See ``authstate.events``."""
        return self.events.subscribe(subscriber, *event_types)

    def on(self, *event_types: type[E]) -> Callable[[Callable[[E], Any]], Callable[[E], Any]]:
        """Decorator form of ``subscribe``: ``@auth.on(LoginSucceeded)``."""
        return self.events.on(*event_types)

    def _emit(self, event_type: type[AuthEvent], **fields: Any) -> None:
        # The one way an operation reports itself: after its store writes returned.
        self.events.emit(event_type(at=self.clock.now(), **fields))

    @contextlib.contextmanager
    def _password_refusal_reported(self, ip: str) -> Iterator[None]:
        # A refused password check (login or step-up) emits LoginFailed or LoginThrottled
        # and lets the exception go on unchanged.
        try:
            yield
        except InvalidCredentials as exc:
            self._emit(LoginFailed, ip=ip or None, error=exc.code)
            raise
        except TooManyAttempts as exc:
            self._emit(LoginThrottled, ip=ip or None, retry_after=exc.retry_after)
            raise

    # -- what the node hands out: CSRF tokens, its public keys, a new signing key -------------
    def csrf_token(self, binding: str) -> str:
        return self.csrf.issue(binding)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return self.context.keys.ring.jwks(now=self.clock.now())

    async def rotate_key(self) -> tuple[str, str]:
        """Start signing with a new key on every node; older keys verify until their tokens
        expire. Returns the new key's ``(kid, alg)``. Emits ``KeyRotated``."""
        key = await self.context.keys.rotate()
        self._emit(KeyRotated, kid=key.kid, alg=key.alg)
        return key.kid, key.alg
