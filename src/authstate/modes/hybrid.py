"""Hybrid mode: a short-lived access JWT plus an opaque refresh token rotated on every use.

The refresh token's family is a session in the store (kind "refresh"), keyed by the hash
of its current token. A token's successor is a keyed hash of the token itself, so a
concurrent refresh within the grace window is answered with the very same successor
without the store ever holding a token in clear.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from authstate.crypto.ids import check_secret_format, hash_secret
from authstate.crypto.jwt import AccessClaims
from authstate.custom_claims import public_claims
from authstate.errors import AuthenticationError, InvalidRefresh
from authstate.events import RefreshReuseDetected
from authstate.modes.access_tokens import (
    new_principal,
    new_session_info,
    principal_parts,
    token_info,
)
from authstate.modes.client import ClientInfo
from authstate.modes.issued import IssuedCredentials
from authstate.modes.jwt_mode import JWTMode
from authstate.modes.records import create_record, own_record, renew_record
from authstate.principal import Principal, SessionInfo
from authstate.rotation import RotationOutcome, rotate_refresh
from authstate.stores.base import SessionRecord


class HybridMode(JWTMode):
    name = "hybrid"
    has_refresh = True

    def successor_of(self, refresh_token: str) -> str:
        """The token that replaces ``refresh_token`` on rotation (same format: 43 chars)."""
        digest = hmac.new(self.ctx.refresh_key, refresh_token.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    @staticmethod
    def _principal(claims: AccessClaims) -> Principal:
        if claims.sid is None:
            raise AuthenticationError(reason="hybrid access token without sid")
        # Positional (user_id, roles, mode, session, token, ...): the cold path.
        token, custom, auth_time, remember = principal_parts(claims)
        session = new_session_info(claims.sid, float(claims.exp))
        return new_principal(
            claims.sub, claims.roles, "hybrid", session, token, custom, auth_time, remember
        )

    def _issue(self, record: SessionRecord, refresh_token: str) -> IssuedCredentials:
        token, claims = self.tokens.issue(
            record.user_id,
            record.roles,
            generation=record.generation,
            handle=record.handle,
            claims=record.claims,
            roles_version=record.roles_version,
            auth_time=record.authenticated_at(),
            remember=record.remember,
        )
        principal = Principal(
            user_id=record.user_id,
            roles=record.roles,
            mode="hybrid",
            # The family's lifetime, not the token's: what the login response shows.
            session=SessionInfo(id=record.handle, expires_at=record.expires_at),
            token=token_info(claims),
            claims=public_claims(claims.extra),
            auth_time=int(record.authenticated_at()),
            remember=record.remember,
        )
        return self._credentials(
            principal,
            token,
            claims,
            refresh_value=refresh_token,
            refresh_max_age=max(1, int(record.expires_at - self.ctx.clock.now())),
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
        refresh_token, record = await create_record(
            self.ctx,
            user_id,
            roles,
            kind="refresh",
            ttl_seconds=self.ctx.settings.refresh_ttl_seconds,
            idle_seconds=0.0,
            client=client,
            data=data,
            remember=remember,
        )
        await self.evict_beyond_cap(user_id, keep=record.handle)
        return self._issue(record, refresh_token)

    async def step_up(self, principal: Principal) -> IssuedCredentials:
        old = await own_record(self.ctx, principal)
        refresh_token, record = await renew_record(self.ctx, old)
        # The old family and its refresh token and access tokens die on every node.
        await self.end_family(old.user_id, old.handle)
        return self._issue(record, refresh_token)

    async def refresh(self, refresh_token: str) -> IssuedCredentials:
        """Rotate a refresh token: a new access JWT and the successor refresh token.

        Raises ``InvalidRefresh`` for an unknown, expired, revoked or reused token (reuse
        outside the grace window also revokes the whole family). Whose family it may be
        (the caller's, CSRF) is checked by ``AuthState.refresh``.
        """
        ctx = self.ctx
        try:
            check_secret_format(refresh_token)
        except AuthenticationError as exc:
            raise InvalidRefresh(reason="malformed refresh token") from exc
        successor = self.successor_of(refresh_token)
        result = await rotate_refresh(
            ctx.store,
            hash_secret(refresh_token),
            hash_secret(successor),
            now=ctx.clock.now(),
            grace_seconds=ctx.settings.refresh_grace_seconds,
        )
        record = result.record
        if result.outcome is RotationOutcome.REUSED and record is not None:
            await self.revoke_handle(record)
            ctx.events.emit(
                RefreshReuseDetected(
                    at=ctx.clock.now(), user_id=record.user_id, session_id=record.handle
                )
            )
            raise InvalidRefresh(reason="refresh token reuse")
        if record is None or result.outcome not in (RotationOutcome.ROTATED, RotationOutcome.GRACE):
            raise InvalidRefresh(reason="unknown refresh token")
        if not record.is_live(ctx.clock.now()):
            raise InvalidRefresh(reason="refresh family expired")
        try:
            ctx.revocation.check(
                user_id=record.user_id, generation=record.generation, handle=record.handle
            )
        except AuthenticationError as exc:
            raise InvalidRefresh(reason=exc.reason) from exc
        if record.roles_version < ctx.revocation.roles_version(record.user_id):
            # Written by a login that raced a roles change (``set_user_grants`` rewrote every
            # other family): its roles may be the old ones. Log in again.
            raise InvalidRefresh(reason="refresh family predates a roles change")
        return self._issue(record, successor)

    async def logout(self, principal: Principal, *, refresh_value: str | None = None) -> None:
        if principal.session is None:
            return
        await self.end_family(principal.user_id, principal.session.id)
