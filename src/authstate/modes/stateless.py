"""Stateless mode: the auth cookie holds a signed JWT; nothing is stored per login."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authstate.crypto.jwt import AccessClaims
from authstate.custom_claims import public_claims
from authstate.modes.access_tokens import token_info
from authstate.modes.client import ClientInfo
from authstate.modes.issued import IssuedCredentials
from authstate.modes.jwt_mode import JWTMode
from authstate.modes.records import current_grants
from authstate.principal import Principal, SessionInfo
from authstate.stores.base import Change, ChangeKind


class StatelessMode(JWTMode):
    name = "stateless"
    has_sessions = False

    @staticmethod
    def _principal(claims: AccessClaims) -> Principal:
        # Positional (user_id, roles, mode, session, token): the cold path.
        token = token_info(claims)
        # A hybrid node sharing the store issued a token with a refresh family (sid): keep
        # it, so that logging the token out here ends the family too.
        session = None if claims.sid is None else SessionInfo(claims.sid, float(claims.exp))
        return Principal(
            claims.sub, claims.roles, "stateless", session, token, public_claims(claims.extra)
        )

    async def login(
        self,
        user_id: str,
        roles: tuple[str, ...],
        *,
        client: ClientInfo,
        previous_auth: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> IssuedCredentials:
        generation = await self.current_generation(user_id)
        grants = await current_grants(self.ctx, user_id, roles)
        token, claims = self.tokens.issue(
            user_id,
            grants.roles,
            generation=generation,
            claims=grants.claims,
            roles_version=grants.version,
        )
        return self._credentials(self._principal(claims), token, claims)

    async def logout(self, principal: Principal, *, refresh_value: str | None = None) -> None:
        if principal.token is None:
            return
        ctx = self.ctx
        until = principal.token.exp + ctx.settings.leeway_seconds
        change = Change(ChangeKind.JTI, principal.token.jti, until=float(until))
        ctx.revocation.apply(await ctx.store.publish(change))
        if principal.session is not None:
            # A hybrid token: its refresh family would otherwise mint new tokens on a
            # hybrid node (mixed modes on one store, docs/deploy.md).
            await self.end_family(principal.user_id, principal.session.id)
