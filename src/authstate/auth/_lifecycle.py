"""``Lifecycle``: starting and stopping one node. ``start()`` opens the store, loads the keys
and the revocation state, builds the mode and the parts that exist only while the node
runs, and subscribes to the bus; ``stop()`` cancels its tasks, lets the event subscribers
finish and closes the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import Self

from authstate.accounts import Accounts
from authstate.auth._node import RunningParts
from authstate.auth._store_sync import StoreSync
from authstate.crypto.ids import b64url_encode
from authstate.crypto.sealing import Sealer, derive_key
from authstate.csrf import CSRFProtector
from authstate.errors import ConfigurationError
from authstate.key_storage import KeyManager
from authstate.master_secret import resolve_master_secret
from authstate.modes.access_tokens import AccessTokens
from authstate.modes.base import BaseMode
from authstate.modes.context import ModeContext
from authstate.modes.freshness import Freshness
from authstate.modes.hybrid import HybridMode
from authstate.modes.session import SessionMode
from authstate.modes.stateless import StatelessMode
from authstate.passwords import PasswordHasher
from authstate.revocation import RevocationState
from authstate.session_cache import SessionCache
from authstate.settings import Settings
from authstate.stores import open_store
from authstate.telemetry import instrument_store

# How long stop() waits for asynchronous event subscribers still running.
_EVENT_DRAIN_SECONDS = 5.0


class Lifecycle(StoreSync):
    """``start()``, ``stop()`` and ``async with``."""

    async def start(self) -> None:
        """Open the store, load keys and the revocation state, subscribe to the bus."""
        async with self._start_lock:
            if self._started:
                return
            await self._start()
            self._started = True

    async def _start(self) -> None:
        settings = self.settings
        if self._store is not None and settings.secret is None and not settings.secret_file:
            if self._store.url_scheme != "memory":
                raise ConfigurationError(
                    "AUTHSTATE_SECRET (or secret=) is required with a store object: the secret "
                    "cannot be kept beside a store authstate did not open"
                )
            master = secrets.token_bytes(32)
        else:
            master = resolve_master_secret(settings)
        # The bus proves itself alive every heartbeat: a quarter of the staleness bound (at
        # most 1 s), so a healthy bus never looks stale between two proofs, even when the
        # bound is set as low as 1 s (it then failed closed now and then on a busy machine).
        heartbeat = min(1.0, settings.max_staleness_seconds / 4)
        store = self._store or await open_store(
            settings.store, clock=self.clock, heartbeat=heartbeat
        )
        if self._store is not None:
            await store.open()
        self._store = store
        # Timed (and traced, with OpenTelemetry installed) below this point: every store
        # call the node makes goes through the wrapper; the warm path makes none. Only
        # Freshness, asked on warm requests, reads the bus state from the store itself.
        raw_store, store = store, instrument_store(store, self.store_stats)
        keys = KeyManager(
            store,
            Sealer(master),
            self.clock,
            algorithm=settings.algorithm,
            verify_grace_seconds=settings.access_ttl_seconds + settings.leeway_seconds,
            first_kid=b64url_encode(derive_key(master, f"first-kid/{settings.algorithm}", 16)),
        )
        await keys.load()
        revocation = RevocationState(self.clock)
        ctx = ModeContext(
            settings=settings,
            store=store,
            clock=self.clock,
            keys=keys,
            revocation=revocation,
            sessions=SessionCache(),
            freshness=Freshness(raw_store, self.clock, settings.max_staleness_seconds),
            refresh_key=derive_key(master, "refresh"),
            events=self.events,
        )
        tokens = AccessTokens(ctx)
        self._parts = RunningParts(
            context=ctx,
            tokens=tokens,
            mode=_make_mode(settings, ctx, tokens),
            csrf=CSRFProtector(
                derive_key(master, "csrf"),
                allowed_origins=settings.allowed_origins,
                clock=self.clock,
            ),
            accounts=Accounts(store, self._hasher or PasswordHasher(), settings, self.clock),
        )
        await store.listen(self._on_change, reconcile=self._reconcile)
        await self._reload_revocations()
        # A rotation published between the first load and listen() would be missed: read again.
        await keys.load()
        self._tasks = [
            asyncio.create_task(self._maintenance_loop(), name="authstate-maintenance"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        await self.events.drain(within=_EVENT_DRAIN_SECONDS)
        if self._store is not None and self._started:
            await self._store.close()
        self._started = False

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _make_mode(settings: Settings, ctx: ModeContext, tokens: AccessTokens) -> BaseMode:
    if settings.mode == "stateless":
        return StatelessMode(ctx, tokens)
    if settings.mode == "session":
        return SessionMode(ctx)
    return HybridMode(ctx, tokens)
