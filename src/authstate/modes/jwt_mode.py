"""What the two JWT modes (stateless and hybrid) share: the access token in the auth cookie,
verified through ``AccessTokens`` on every request."""

from __future__ import annotations

from authstate.crypto.jwt import AccessClaims
from authstate.modes.access_tokens import AccessTokens
from authstate.modes.base import BaseMode
from authstate.modes.context import ModeContext
from authstate.modes.issued import IssuedCredentials
from authstate.principal import Principal


class JWTMode(BaseMode):
    """A mode whose auth cookie holds an access JWT. Subclasses say how claims become a
    principal (``_principal``) and what else they keep (hybrid: the refresh family)."""

    def __init__(self, ctx: ModeContext, tokens: AccessTokens) -> None:
        super().__init__(ctx)
        self.tokens = tokens
        # One factory object: the token cache keeps the principal it built with it.
        self._to_principal = self._principal

    @staticmethod
    def _principal(claims: AccessClaims) -> Principal:
        """The principal a verified token stands for (``AuthenticationError`` to refuse)."""
        raise NotImplementedError

    async def authenticate(self, auth_value: str) -> Principal:
        return self.tokens.authenticate(auth_value, self._to_principal)

    def authenticate_from_memory(self, auth_value: str) -> Principal:
        # A JWT is always verified from memory: the key ring and the revocation state.
        return self.tokens.authenticate(auth_value, self._to_principal)

    def forget(self, auth_value: str) -> None:
        self.tokens.forget(auth_value)

    @staticmethod
    def _credentials(
        principal: Principal,
        token: str,
        claims: AccessClaims,
        *,
        refresh_value: str | None = None,
        refresh_max_age: int = 0,
    ) -> IssuedCredentials:
        """What a login (or refresh) hands back for a newly issued access token."""
        return IssuedCredentials(
            principal=principal,
            auth_value=token,
            auth_max_age=claims.exp - claims.iat,
            expires_at=float(claims.exp),
            refresh_value=refresh_value,
            refresh_max_age=refresh_max_age,
            remember=principal.remember,
        )
