"""What the three modes share: their dependencies, issued credentials and the access tokens."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from authstate._time import Clock
from authstate.crypto.jwt import AccessClaims, issue_access_token, verify_access_token
from authstate.errors import AuthenticationError, NotFound, StoreUnavailable
from authstate.key_storage import KeyManager
from authstate.principal import Mode, Principal, SessionInfo, TokenInfo
from authstate.revocation import RevocationState
from authstate.session_cache import SessionCache
from authstate.settings import Settings
from authstate.stores.base import Change, ChangeKind, SessionRecord, Store

audit = logging.getLogger("authstate.audit")


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """Where a login or refresh came from; stored with the session for the user's listing."""

    user_agent: str = ""
    ip: str = ""


@dataclass(frozen=True, slots=True)
class IssuedCredentials:
    """What a login or refresh hands back; the ASGI layer turns it into cookies."""

    principal: Principal
    auth_value: str  # value of the auth cookie: a JWT or a session ID
    auth_max_age: int  # seconds
    expires_at: float  # when the auth credential expires (Unix seconds)
    refresh_value: str | None = field(default=None, repr=False)
    refresh_max_age: int = 0


class Freshness:
    """Whether this node's view of the revocation state is within the staleness bound."""

    def __init__(self, store: Store, clock: Clock, max_staleness: float) -> None:
        self._store = store
        self._clock = clock
        self._max_staleness = max_staleness

    def is_fresh(self) -> bool:
        since = self._store.bus_healthy_since()
        return since is not None and self._clock.monotonic() - since <= self._max_staleness


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


class AccessTokens:
    """Issues access JWTs and verifies them, with a bounded cache of verified tokens.

    A cache hit still re-checks expiry and the revocation state, so a revoked or expired
    token is never served from the cache; the cache only saves the signature check.
    """

    def __init__(self, ctx: ModeContext, *, max_entries: int = 100_000) -> None:
        self._ctx = ctx
        self._verified: OrderedDict[str, AccessClaims] = OrderedDict()
        self._max_entries = max_entries

    def forget_all(self) -> None:
        """Drop every cached verification (the key ring changed)."""
        self._verified.clear()

    def issue(
        self, user_id: str, roles: tuple[str, ...], *, generation: int, sid: str | None = None
    ) -> tuple[str, AccessClaims]:
        settings = self._ctx.settings
        return issue_access_token(
            self._ctx.keys.ring.signing_key(),
            issuer=settings.issuer,
            audience=settings.audience,
            subject=user_id,
            roles=roles,
            now=self._ctx.clock.now(),
            ttl_seconds=settings.access_ttl_seconds,
            sid=sid,
            gen=generation,
        )

    def verify(self, token: str) -> AccessClaims:
        """Return the claims of a valid, unrevoked token; raise ``InvalidToken`` otherwise.

        Raises ``StoreUnavailable`` only under ``fail_closed`` when the bus is stale.
        """
        ctx = self._ctx
        now = ctx.clock.now()
        claims = self._verified.get(token)
        if claims is None:
            claims = verify_access_token(
                token,
                ctx.keys.ring,
                issuer=ctx.settings.issuer,
                audience=ctx.settings.audience,
                now=now,
                leeway=ctx.settings.leeway_seconds,
            )
            self._remember(token, claims)
        elif now >= claims.exp + ctx.settings.leeway_seconds:
            del self._verified[token]
            raise AuthenticationError(reason="token expired")
        if ctx.settings.fail_closed and not ctx.freshness.is_fresh():
            raise StoreUnavailable(reason="revocation state is stale and fail_closed is set")
        ctx.revocation.check(
            user_id=claims.sub, generation=claims.gen, sid=claims.sid, jti=claims.jti
        )
        return claims

    def _remember(self, token: str, claims: AccessClaims) -> None:
        self._verified[token] = claims
        if len(self._verified) > self._max_entries:
            self._verified.popitem(last=False)


def token_info(claims: AccessClaims) -> TokenInfo:
    return TokenInfo(jti=claims.jti, iat=claims.iat, exp=claims.exp, kid=claims.kid)


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
    ) -> IssuedCredentials:
        raise NotImplementedError

    async def logout(self, principal: Principal, *, refresh_value: str | None = None) -> None:
        raise NotImplementedError

    # -- shared --------------------------------------------------------------------------------
    def longest_lifetime(self) -> float:
        """Seconds the longest credential this mode issues can live."""
        return float(self.ctx.settings.access_ttl_seconds)

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
        """Revoke one of the principal's own sessions by public handle; ``NotFound`` else."""
        if not self.has_sessions:
            raise NotFound("this mode keeps no sessions")
        record = await self.ctx.store.delete_session_by_handle(handle, user_id=principal.user_id)
        if record is None:
            raise NotFound("no such session")
        await self.revoke_handle(record)

    async def revoke_handle(self, record: SessionRecord) -> None:
        """Tell every node that a session/family is gone (after deleting it from the store)."""
        self.ctx.sessions.drop(record.key)
        await self.revoke_sid(record.handle)

    async def revoke_sid(self, handle: str) -> None:
        """Publish a revoked handle. One access-token lifetime is enough: the record is gone
        from the store, and node caches drop it on this change or on their next reconcile."""
        ctx = self.ctx
        until = ctx.clock.now() + ctx.settings.access_ttl_seconds + ctx.settings.leeway_seconds
        ctx.revocation.apply(await ctx.store.publish(Change(ChangeKind.SID, handle, until)))

    async def current_generation(self, user_id: str) -> int:
        return await self.ctx.store.get_user_generation(user_id)

    def session_info(self, record: SessionRecord) -> SessionInfo:
        return SessionInfo(
            id=record.handle, expires_at=min(record.expires_at, record.idle_expires_at())
        )
