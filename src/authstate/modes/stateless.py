"""Stateless mode: the auth cookie holds a signed JWT; nothing is stored per login."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authstate.crypto.jwt import AccessClaims
from authstate.modes.base import (
    AccessTokens,
    BaseMode,
    ClientInfo,
    IssuedCredentials,
    ModeContext,
    token_info,
)
from authstate.principal import Principal, SessionInfo
from authstate.stores.base import Change, ChangeKind


class StatelessMode(BaseMode):
    name = "stateless"
    has_sessions = False

    def __init__(self, ctx: ModeContext, tokens: AccessTokens) -> None:
        super().__init__(ctx)
        self.tokens = tokens
        # One factory object: the token cache keeps the principal it built with it.
        self._to_principal = self._principal

    async def authenticate(self, auth_value: str) -> Principal:
        return self.tokens.authenticate(auth_value, self._to_principal)

    def authenticate_from_memory(self, auth_value: str) -> Principal:
        # A JWT is always verified from memory: the key ring and the revocation state.
        return self.tokens.authenticate(auth_value, self._to_principal)

    def forget(self, auth_value: str) -> None:
        self.tokens.forget(auth_value)

    @staticmethod
    def _principal(claims: AccessClaims) -> Principal:
        # Positional (user_id, roles, mode, session, token, binding): the cold path.
        token = token_info(claims)
        # A hybrid node sharing the store issued a token with a refresh family (sid): keep
        # it, so that logging the token out here ends the family too.
        session = None if claims.sid is None else SessionInfo(claims.sid, float(claims.exp))
        return Principal(claims.sub, claims.roles, "stateless", session, token, claims.jti)

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
        token, claims = self.tokens.issue(user_id, roles, generation=generation)
        principal = Principal(
            user_id=user_id,
            roles=roles,
            mode="stateless",
            token=token_info(claims),
            binding=claims.jti,
        )
        return IssuedCredentials(
            principal=principal,
            auth_value=token,
            auth_max_age=claims.exp - claims.iat,
            expires_at=float(claims.exp),
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
