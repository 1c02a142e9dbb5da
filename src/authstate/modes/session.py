"""Session mode: the auth cookie holds an opaque 256-bit ID; the session lives in the store.

Only the SHA-256 of the ID is stored. Recently used sessions are served from the node's
cache while the bus is fresh; every hit re-checks expiry and the revocation state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from authstate.crypto.ids import check_secret_format, hash_secret, new_secret_id
from authstate.custom_claims import EMPTY_CLAIMS
from authstate.errors import AuthenticationError
from authstate.modes.access_tokens import new_principal
from authstate.modes.base import BaseMode
from authstate.modes.client import ClientInfo
from authstate.modes.context import ModeContext
from authstate.modes.issued import IssuedCredentials
from authstate.modes.records import create_record, own_record, renew_record, session_info
from authstate.principal import Principal
from authstate.stores.base import Change, ChangeKind, SessionRecord

_KEY_MEMO_ENTRIES = 65_536


class SessionMode(BaseMode):
    name = "session"

    def __init__(self, ctx: ModeContext) -> None:
        super().__init__(ctx)
        self._last_seen_interval = ctx.settings.last_seen_interval_seconds
        # Session ID -> its store key, for IDs of the right format: the SHA-256 is a pure
        # function, worth remembering for IDs sent on every request. Emptied when full.
        self._keys: dict[str, str] = {}
        # Bound once: the warm path below runs on every request.
        self._is_fresh = ctx.freshness.is_fresh
        self._sessions = ctx.sessions
        self._now = ctx.clock.now
        self._revocation = ctx.revocation

    def _store_key(self, auth_value: str) -> str:
        """The store key of a session ID (``InvalidToken`` for a malformed one)."""
        key = self._keys.get(auth_value)
        if key is None:
            check_secret_format(auth_value)
            key = hash_secret(auth_value)
            if len(self._keys) >= _KEY_MEMO_ENTRIES:
                self._keys.clear()
            self._keys[auth_value] = key
        return key

    def authenticate_from_memory(self, auth_value: str) -> Principal | None:
        key = self._keys.get(auth_value) or self._store_key(auth_value)
        if not self._is_fresh():  # only a fresh bus lets the cache answer
            return None
        entry = self._sessions.entry(key)
        if entry is None or entry.principal is None:
            return None
        now = self._now()
        record = entry.record
        if not now < entry.live_until or now - record.last_seen_at >= self._last_seen_interval:
            return None  # expired or due for a last_seen write: authenticate() handles it
        self._revocation.check_credential(record.user_id, record.generation, record.handle, None)
        if record.roles_version < self._revocation.roles_version(record.user_id):
            return None  # roles changed since it was cached: authenticate() reads the store
        return entry.principal

    async def authenticate(self, auth_value: str) -> Principal:
        principal = self.authenticate_from_memory(auth_value)
        if principal is not None:
            return principal
        key = self._store_key(auth_value)
        # Bound in __init__, as on the warm path: this runs on every store read too.
        ctx, sessions, revocation = self.ctx, self._sessions, self._revocation
        now = self._now()
        entry = sessions.entry(key) if self._is_fresh() else None
        if entry is not None and entry.record.roles_version < revocation.roles_version(
            entry.record.user_id
        ):
            # The user's roles or claims changed (a ROLES change on the bus): the store has
            # the record rewritten in place.
            sessions.drop(key)
            entry = None
        if entry is not None and not now < entry.live_until:
            # Expired as cached, but another node may have recorded use since: the store
            # decides (rare: only once per session as it dies).
            sessions.drop(key)
            entry = None
        if entry is None:
            # Cold path (or a stale bus): ask the store; StoreUnavailable propagates as 503.
            since = sessions.invalidations
            record = await ctx.store.get_session(key)
            if record is None or record.kind != "session":
                raise AuthenticationError(reason="unknown session")
            if record.roles_version < revocation.roles_version(record.user_id):
                # Written by a login that raced a roles change: it may hold the old roles.
                raise AuthenticationError(reason="session predates a roles change")
            entry = sessions.put(record, self._principal(record), since=since)
        record = entry.record
        # A hit is re-checked like a fresh record: liveness, then the revocation state.
        if not now < entry.live_until:
            sessions.drop(key)
            raise AuthenticationError(reason="session expired")
        revocation.check_credential(record.user_id, record.generation, record.handle, None)
        if now - record.last_seen_at >= self._last_seen_interval:
            # Throttled: idle expiry slides, but not with a store write per request.
            since = sessions.invalidations
            if await ctx.store.touch_session(key, now) is False:
                # The store no longer has it (deleted, or lost with the store's data): the
                # cached copy must not outlive it. (``is False``: a store written before
                # touch_session answered returns None, which says nothing.)
                sessions.drop(key)
                raise AuthenticationError(reason="session no longer in the store")
            record = replace(record, last_seen_at=now)
            entry = sessions.put(record, self._principal(record), since=since)
        principal = entry.principal
        if principal is None:
            principal = entry.principal = self._principal(record)
        return principal

    def forget(self, auth_value: str) -> None:
        self._keys.pop(auth_value, None)
        self.ctx.sessions.drop(hash_secret(auth_value))

    def _principal(self, record: SessionRecord) -> Principal:
        # Positional (user_id, roles, mode, session, token, claims, auth_time, remember):
        # built on every store read of a session, the cold path.
        return new_principal(
            record.user_id,
            record.roles,
            "session",
            session_info(record),
            None,
            MappingProxyType(dict(record.claims)) if record.claims else EMPTY_CLAIMS,
            int(record.authenticated_at()),
            record.remember,
        )

    async def login(
        self,
        user_id: str,
        roles: tuple[str, ...],
        *,
        client: ClientInfo,
        previous_auth: str | None = None,
        data: Mapping[str, Any] | None = None,
        remember: bool = True,
    ) -> IssuedCredentials:
        ctx = self.ctx
        if previous_auth is not None:
            # Fixation defence: whatever session the browser had is destroyed, never adopted.
            await self._discard(previous_auth)
        settings = ctx.settings
        secret, record = await create_record(
            ctx,
            user_id,
            roles,
            kind="session",
            ttl_seconds=settings.session_ttl_seconds,
            idle_seconds=settings.session_idle_seconds,
            client=client,
            data=data,
            remember=remember,
        )
        principal = self._principal(record)
        ctx.sessions.put(record, principal)
        await self.evict_beyond_cap(user_id, keep=record.handle)
        return IssuedCredentials(
            principal=principal,
            auth_value=secret,
            auth_max_age=int(settings.session_ttl_seconds),
            expires_at=record.expires_at,
            remember=remember,
        )

    async def step_up(self, principal: Principal) -> IssuedCredentials:
        ctx = self.ctx
        old = await own_record(ctx, principal)
        secret, record = await renew_record(ctx, old)
        await self.end_family(old.user_id, old.handle)
        principal = self._principal(record)
        ctx.sessions.put(record, principal)
        return IssuedCredentials(
            principal=principal,
            auth_value=secret,
            auth_max_age=max(1, int(record.expires_at - ctx.clock.now())),
            expires_at=record.expires_at,
            remember=record.remember,
        )

    async def rotate(
        self, auth_value: str, *, roles: tuple[str, ...] | None = None
    ) -> IssuedCredentials:
        """Give the current session a new ID (privilege change); the old ID stops working."""
        ctx = self.ctx
        old_key = hash_secret(auth_value)
        secret = new_secret_id()
        record = await ctx.store.replace_session_key(old_key, hash_secret(secret), roles=roles)
        ctx.sessions.drop(old_key)
        # Other nodes may have the old key cached: make them forget it.
        until = ctx.clock.now() + ctx.settings.session_ttl_seconds
        await ctx.store.publish(Change(ChangeKind.SESSION, old_key, until=until))
        if record is None:
            raise AuthenticationError(reason="session vanished during rotation")
        principal = self._principal(record)
        ctx.sessions.put(record, principal)
        remaining = max(1, int(record.expires_at - ctx.clock.now()))
        return IssuedCredentials(
            principal=principal,
            auth_value=secret,
            auth_max_age=remaining,
            expires_at=record.expires_at,
            remember=record.remember,
        )

    async def logout(self, principal: Principal, *, refresh_value: str | None = None) -> None:
        if principal.session is None:
            return
        record = await self.ctx.store.delete_session_by_handle(
            principal.session.id, user_id=principal.user_id
        )
        if record is not None:
            await self.revoke_handle(record)

    async def _discard(self, auth_value: str) -> None:
        try:
            check_secret_format(auth_value)
        except AuthenticationError:
            return
        record = await self.ctx.store.delete_session(hash_secret(auth_value))
        if record is not None:
            await self.revoke_handle(record)
