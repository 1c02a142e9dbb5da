"""What the three modes share: their dependencies, issued credentials and the access tokens."""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from authstate._time import Clock
from authstate.crypto.ids import hash_secret, new_handle, new_secret_id
from authstate.crypto.jwt import AccessClaims, issue_access_token, verify_access_token_with_key
from authstate.errors import AuthenticationError, Conflict, NotFound, StoreUnavailable
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
        self.store = store
        self.clock = clock
        self.max_staleness = max_staleness  # seconds

    def is_fresh(self) -> bool:
        since = self.store.bus_healthy_since()
        return since is not None and self.clock.monotonic() - since <= self.max_staleness


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


class _VerifiedToken:
    """A cache entry: the claims of a token whose signature and claims checked out, the
    principal built from them, and the span of Unix time in which the cold checks of
    ``exp``/``nbf``/``iat`` and of the signing key's retirement would pass again."""

    __slots__ = ("claims", "principal", "to_principal", "valid_from", "valid_until")

    def __init__(
        self,
        claims: AccessClaims,
        principal: Principal | None,
        to_principal: PrincipalFactory | None,
        valid_from: float,
        valid_until: float,
    ) -> None:
        self.claims = claims
        self.principal = principal
        self.to_principal = to_principal
        self.valid_from = valid_from
        self.valid_until = valid_until


PrincipalFactory = Callable[[AccessClaims], Principal]


class AccessTokens:
    """Issues access JWTs and verifies them, with a bounded cache of verified tokens.

    A cache hit still re-checks expiry and the revocation state, so a revoked or expired
    token is never served from the cache; the cache only saves the signature check, the
    parsing and building the (immutable) principal. It holds at most ``max_entries``
    tokens, the oldest verified first out, and is emptied when the key ring changes.
    """

    def __init__(self, ctx: ModeContext, *, max_entries: int = 100_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self._ctx = ctx
        self._verified: OrderedDict[str, _VerifiedToken] = OrderedDict()
        self._max_entries = max_entries
        # Settings are frozen: read them once, not through properties on every request.
        settings = ctx.settings
        self._issuer = settings.issuer
        self._audience = settings.audience
        self._leeway = settings.leeway_seconds
        # No token of ours lives longer than the access lifetime, whatever its exp says
        # (one minted under an older, longer AUTHSTATE_ACCESS_TTL, or by a leaked key).
        self._max_age = settings.access_ttl_seconds
        self._fail_closed = settings.fail_closed
        self._now = ctx.clock.now
        self._revocation = ctx.revocation

    def __len__(self) -> int:
        return len(self._verified)

    def forget_all(self) -> None:
        """Drop every cached verification (the key ring changed)."""
        self._verified.clear()

    def forget(self, token: str) -> None:
        self._verified.pop(token, None)

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
        return self._checked(token, None).claims

    def authenticate(self, token: str, to_principal: PrincipalFactory) -> Principal:
        """``verify``, then the principal ``to_principal(claims)``, built once per token.

        Pass the same factory object every time (a mode keeps one): an entry built by
        another factory is rebuilt.
        """
        # _checked inlined: this is the per-request path of the stateless and hybrid modes.
        now = self._now()
        entry = self._verified.get(token)
        if (
            entry is None
            or not entry.valid_from <= now < entry.valid_until
            or entry.to_principal is not to_principal
        ):
            entry = self._verify_cold(token, now, to_principal)
        if self._fail_closed and not self._ctx.freshness.is_fresh():
            raise StoreUnavailable(reason="revocation state is stale and fail_closed is set")
        claims = entry.claims
        self._revocation.check_credential(claims.sub, claims.gen, claims.sid, claims.jti)
        principal = entry.principal
        if principal is None:  # pragma: no cover - _verify_cold built it with to_principal
            raise AuthenticationError(reason="no principal for the token")
        return principal

    def _checked(self, token: str, to_principal: PrincipalFactory | None) -> _VerifiedToken:
        ctx = self._ctx
        now = ctx.clock.now()
        entry = self._verified.get(token)
        if (
            entry is None
            or not entry.valid_from <= now < entry.valid_until
            or (to_principal is not None and entry.to_principal is not to_principal)
        ):
            # Unknown, outside its validity (the cold checks decide and say why) or built
            # for another factory: verify from scratch.
            entry = self._verify_cold(token, now, to_principal)
        if self._fail_closed and not ctx.freshness.is_fresh():
            raise StoreUnavailable(reason="revocation state is stale and fail_closed is set")
        claims = entry.claims
        ctx.revocation.check_credential(claims.sub, claims.gen, claims.sid, claims.jti)
        return entry

    def _verify_cold(
        self, token: str, now: float, to_principal: PrincipalFactory | None
    ) -> _VerifiedToken:
        self._verified.pop(token, None)
        ring = self._ctx.keys.ring
        claims, key = verify_access_token_with_key(
            token,
            ring,
            issuer=self._issuer,
            audience=self._audience,
            now=now,
            leeway=self._leeway,
            max_age=self._max_age,
        )
        leeway = self._leeway
        # exp passes while now < exp + leeway; nbf and iat while now >= max(nbf, iat) - leeway
        # (exact in binary floating point for Unix times: integers added to or taken from now).
        # max_age passes while now <= iat + max_age + leeway: the next float is the open bound.
        valid_until = min(
            float(claims.exp + leeway),
            math.nextafter(float(claims.iat + self._max_age + leeway), math.inf),
        )
        retire_after = key.retire_after
        if retire_after is not None:
            # The key verifies while now <= retire_after: the next float is the open bound.
            valid_until = min(valid_until, math.nextafter(retire_after, math.inf))
        entry = _VerifiedToken(
            claims,
            None if to_principal is None else to_principal(claims),
            to_principal,
            float(max(claims.nbf, claims.iat) - leeway),
            valid_until,
        )
        self._verified[token] = entry
        if len(self._verified) > self._max_entries:
            self._verified.popitem(last=False)
        return entry


def token_info(claims: AccessClaims) -> TokenInfo:
    # Positional: built on every first sight of a token, where keywords cost measurably.
    return TokenInfo(claims.jti, claims.iat, claims.exp, claims.kid)


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
        """Revoke one of the principal's own sessions by public handle; ``NotFound`` else."""
        if not self.has_sessions:
            raise NotFound("this mode keeps no sessions")
        record = await self.ctx.store.delete_session_by_handle(handle, user_id=principal.user_id)
        if record is None:
            raise NotFound("no such session")
        await self.revoke_handle(record)

    async def end_family(self, user_id: str, handle: str) -> None:
        """Delete the user's session or refresh family ``handle`` and revoke its sid on every
        node; a family already gone from the store (revoked elsewhere) still has its sid
        revoked."""
        record = await self.ctx.store.delete_session_by_handle(handle, user_id=user_id)
        if record is not None:
            await self.revoke_handle(record)
        else:
            await self.revoke_sid(handle)

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

    async def create_record(
        self,
        user_id: str,
        roles: tuple[str, ...],
        *,
        kind: str,
        ttl_seconds: float,
        idle_seconds: float,
        client: ClientInfo,
        data: Mapping[str, Any] | None,
    ) -> tuple[str, SessionRecord]:
        """Store a new session or refresh family; return its secret (for the cookie only)
        and the record, which the store keys by the secret's hash."""
        ctx = self.ctx
        generation = await self.current_generation(user_id)
        now = ctx.clock.now()
        while True:
            secret = new_secret_id()
            record = SessionRecord(
                key=hash_secret(secret),
                handle=new_handle(),
                user_id=user_id,
                kind=kind,
                created_at=now,
                last_seen_at=now,
                expires_at=now + ttl_seconds,
                idle_timeout=float(idle_seconds),
                roles=roles,
                user_agent=client.user_agent[:256],
                ip=client.ip[:64],
                data=dict(data or {}),
                generation=generation,
            )
            try:
                await ctx.store.create_session(record)
            except Conflict:  # pragma: no cover - a 256-bit collision
                continue
            return secret, record

    async def current_generation(self, user_id: str) -> int:
        return await self.ctx.store.get_user_generation(user_id)

    def session_info(self, record: SessionRecord) -> SessionInfo:
        return SessionInfo(
            id=record.handle, expires_at=min(record.expires_at, record.idle_expires_at())
        )
