"""Stateless mode: the auth cookie holds a signed JWT; nothing is stored per login."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authstate.crypto.jwt import AccessClaims
from authstate.modes.access_tokens import (
    new_principal,
    new_session_info,
    principal_parts,
)
from authstate.modes.client import ClientInfo
from authstate.modes.issued import IssuedCredentials
from authstate.modes.jwt_mode import JWTMode
from authstate.modes.records import current_grants
from authstate.principal import Principal
from authstate.stores.base import Change, ChangeKind


class StatelessMode(JWTMode):
    name = "stateless"
    has_sessions = False

    @staticmethod
    def _principal(claims: AccessClaims) -> Principal:
        # Positional (user_id, roles, mode, session, token, ...): the cold path.
        token, custom, auth_time, remember = principal_parts(claims)
        # A hybrid node sharing the store issued a token with a refresh family (sid): keep
        # it, so that logging the token out here ends the family too.
        session = None if claims.sid is None else new_session_info(claims.sid, float(claims.exp))
        return new_principal(
            claims.sub, claims.roles, "stateless", session, token, custom, auth_time, remember
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
        generation = await self.current_generation(user_id)
        return await self._issue(user_id, roles, generation, self.ctx.clock.now(), remember)

    async def _issue(
        self,
        user_id: str,
        roles: tuple[str, ...],
        generation: int,
        auth_time: float | None,
        remember: bool,
    ) -> IssuedCredentials:
        grants = await current_grants(self.ctx, user_id, roles)
        token, claims = self.tokens.issue(
            user_id,
            grants.roles,
            generation=generation,
            claims=grants.claims,
            roles_version=grants.version,
            auth_time=auth_time,
            remember=remember,
        )
        return self._credentials(self._principal(claims), token, claims)

    async def step_up(self, principal: Principal) -> IssuedCredentials:
        # A new token stamped now; the old one is revoked by its jti on every node.
        generation = await self.current_generation(principal.user_id)
        issued = await self._issue(
            principal.user_id,
            principal.roles,
            generation,
            self.ctx.clock.now(),
            principal.remember,
        )
        await self.logout(principal)
        return issued

    async def revoke_others(self, principal: Principal) -> IssuedCredentials:
        """No sessions to list here: every token of the user dies (a new generation, on
        every node) and the caller gets a new one, with its ``auth_time`` unchanged."""
        generation = await self.logout_everywhere(principal.user_id)
        return await self._issue(
            principal.user_id,
            principal.roles,
            generation,
            principal.auth_time,
            principal.remember,
        )

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
