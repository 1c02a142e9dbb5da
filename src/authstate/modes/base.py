"""The mode base: what every mode offers, and logout-everywhere and the session listings,
which work the same in all of them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authstate.errors import NotFound
from authstate.events import SessionEvicted
from authstate.modes.client import ClientInfo
from authstate.modes.context import ModeContext
from authstate.modes.issued import IssuedCredentials
from authstate.principal import Mode, Principal
from authstate.stores.base import Change, ChangeKind, SessionRecord


class BaseMode:
    """Behaviour common to every mode: logout-everywhere and the session listings."""

    name: Mode
    has_sessions = True
    has_refresh = False

    def __init__(self, ctx: ModeContext) -> None:
        self.ctx = ctx

    # -- to implement ----------------------------------------------------------------------
    async def authenticate(self, auth_value: str) -> Principal:
        raise NotImplementedError

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
        raise NotImplementedError

    async def step_up(self, principal: Principal) -> IssuedCredentials:
        """New credentials for ``principal`` stamped ``auth_time`` = now (the caller has just
        checked the password): a new session ID / refresh family / token, the old one dead
        on every node. ``AuthenticationError`` if the old one is already gone."""
        raise NotImplementedError

    async def logout(self, principal: Principal, *, refresh_value: str | None = None) -> None:
        raise NotImplementedError

    def authenticate_from_memory(self, auth_value: str) -> Principal | None:
        """``authenticate`` when this node can answer without awaiting anything (a JWT, a
        cached session), else None: then ``await authenticate()``. Raises what
        ``authenticate`` raises. The per-request path of the middleware."""
        return None

    def forget(self, auth_value: str) -> None:
        """Drop what this node cached about a credential: its next use is verified as if
        seen for the first time (benchmarks measure that "cold" path). Never needed for
        correctness: revocations reach the caches through the revocation state and the bus."""
        raise NotImplementedError

    # -- shared --------------------------------------------------------------------------------
    def longest_lifetime(self) -> float:
        """Seconds the longest credential of *any* mode can live: nodes of other modes (or a
        CLI run with another AUTHSTATE_MODE) may share the store, so a user-wide revocation
        must outlive every credential it could reject."""
        settings = self.ctx.settings
        return float(
            max(
                settings.access_ttl_seconds,
                settings.session_ttl_seconds,
                settings.refresh_ttl_seconds,
            )
        )

    async def logout_everywhere(self, user_id: str) -> int:
        """Revoke every session, family and token of the user on every node; return the new
        generation. Tokens and sessions carry the generation they were issued under, so the
        cut is exact whatever the clocks say."""
        ctx = self.ctx
        generation = await ctx.store.bump_user_generation(user_id)
        now = ctx.clock.now()
        change = Change(
            ChangeKind.USER,
            user_id,
            until=now + self.longest_lifetime() + ctx.settings.leeway_seconds,
            generation=generation,
        )
        ctx.revocation.apply(await ctx.store.publish(change))
        for record in await ctx.store.delete_user_sessions(user_id):
            ctx.sessions.drop(record.key)
        return generation

    async def list_sessions(self, principal: Principal) -> list[SessionRecord]:
        if not self.has_sessions:
            raise NotFound("this mode keeps no sessions")
        now = self.ctx.clock.now()
        kind = "refresh" if self.has_refresh else "session"
        records = await self.ctx.store.list_sessions(principal.user_id, kind=kind)
        minimum = self.ctx.revocation.minimum_generation(principal.user_id)
        return [r for r in records if r.is_live(now) and r.generation >= minimum]

    async def revoke_session(self, principal: Principal, handle: str) -> None:
        """Revoke one of the principal's own sessions by session handle; ``NotFound`` else."""
        if not self.has_sessions:
            raise NotFound("this mode keeps no sessions")
        record = await self.ctx.store.delete_session_by_handle(handle, user_id=principal.user_id)
        if record is None:
            raise NotFound("no such session")
        await self.revoke_handle(record)

    async def end_family(self, user_id: str, handle: str) -> None:
        """Delete the user's session or refresh family ``handle`` and revoke its handle on
        every node; a family already gone from the store (revoked elsewhere) still has its
        handle revoked."""
        record = await self.ctx.store.delete_session_by_handle(handle, user_id=user_id)
        if record is not None:
            await self.revoke_handle(record)
        else:
            await self.publish_revoked_handle(handle)

    async def revoke_handle(self, record: SessionRecord) -> None:
        """Tell every node that a session/family is gone (after deleting it from the store)."""
        self.ctx.sessions.drop(record.key)
        await self.publish_revoked_handle(record.handle)

    async def publish_revoked_handle(self, handle: str) -> None:
        """Publish a revoked session handle. One access-token lifetime is enough: the record
        is gone from the store, and node caches drop it on this change or on their next
        reconcile."""
        ctx = self.ctx
        until = ctx.clock.now() + ctx.settings.access_ttl_seconds + ctx.settings.leeway_seconds
        ctx.revocation.apply(await ctx.store.publish(Change(ChangeKind.SID, handle, until)))

    async def current_generation(self, user_id: str) -> int:
        return await self.ctx.store.get_user_generation(user_id)

    # -- device control ----------------------------------------------------------------------
    async def revoke_others(self, principal: Principal) -> IssuedCredentials | None:
        """Revoke every session/family of the user but the principal's own, on every node;
        return None (the caller's credentials stay valid). Stateless mode overrides it."""
        if principal.session is None:
            raise NotFound("no session to keep")
        ctx = self.ctx
        doomed = await ctx.store.delete_user_sessions(
            principal.user_id, except_handle=principal.session.id
        )
        for record in doomed:
            await self.revoke_handle(record)
        return None

    async def evict_beyond_cap(self, user_id: str, keep: str) -> list[SessionRecord]:
        """With ``max_sessions_per_user`` set: end the user's oldest live sessions/families
        beyond the cap (never ``keep``, the one just created) on every node; return them.
        Concurrent logins may each evict: the count can dip below the cap, never stay over."""
        cap = self.ctx.settings.max_sessions_per_user
        if cap <= 0 or not self.has_sessions:
            return []
        live = [r for r in await self.list_sessions_of(user_id) if r.handle != keep]
        live.sort(key=lambda r: (r.created_at, r.handle), reverse=True)  # newest first
        evicted = live[cap - 1 :]
        for record in evicted:
            await self.end_family(user_id, record.handle)
            self.ctx.events.emit(
                SessionEvicted(at=self.ctx.clock.now(), user_id=user_id, session_id=record.handle)
            )
        return evicted

    async def list_sessions_of(self, user_id: str) -> list[SessionRecord]:
        """The user's live sessions (or refresh families) of this mode's kind."""
        now = self.ctx.clock.now()
        kind = "refresh" if self.has_refresh else "session"
        records = await self.ctx.store.list_sessions(user_id, kind=kind)
        minimum = self.ctx.revocation.minimum_generation(user_id)
        return [r for r in records if r.is_live(now) and r.generation >= minimum]
