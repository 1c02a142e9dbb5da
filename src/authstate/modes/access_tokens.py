"""Access tokens as the JWT modes use them: issued with the ring's signing key, verified
once and then served from a bounded cache whose every hit is re-checked."""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from authstate._frozen import builder
from authstate.crypto.claims import auth_time_claim, remember_claim, validity_window
from authstate.crypto.jwt import AccessClaims
from authstate.crypto.token_formats import ISSUERS, VERIFIERS, forget_known_headers
from authstate.custom_claims import EMPTY_CLAIMS, public_claims
from authstate.errors import AuthenticationError, InvalidToken, StoreUnavailable
from authstate.modes.context import ModeContext
from authstate.principal import Principal, SessionInfo, TokenInfo

PrincipalFactory = Callable[[AccessClaims], Principal]

# The constructors of the value objects every cold verification builds, positional (every
# field in declaration order) and without the frozen dataclass __init__'s cost (_frozen).
new_principal = builder(Principal)
new_session_info = builder(SessionInfo)
_new_token_info = builder(TokenInfo)


class _VerifiedToken:
    """A cache entry: the claims of a token whose signature and claims checked out, the
    principal built from them, and the span of Unix time in which the cold checks of
    ``exp``/``nbf``/``iat``/``max_age`` and of the signing key's retirement would pass again
    (``crypto.claims.validity_window``)."""

    __slots__ = (
        "claims",
        "principal",
        "roles_version",
        "to_principal",
        "valid_from",
        "valid_until",
    )

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
        self.roles_version = roles_version_of(claims) if claims.extra else 0


def roles_version_of(claims: AccessClaims) -> int:
    """The roles version a token was issued under (its ``rv`` claim; absent: 0)."""
    version = claims.extra.get("rv", 0)
    if type(version) is not int or version < 0:
        raise InvalidToken(reason="rv is not an int >= 0")
    return version


def step_up_fields(claims: AccessClaims) -> tuple[int | None, bool]:
    """The principal's ``auth_time`` and ``remember`` from a token's claims."""
    if not claims.extra:  # the common case: a remembered login minted before step-up
        return None, True
    return auth_time_claim(claims), remember_claim(claims)


def token_info(claims: AccessClaims) -> TokenInfo:
    # Positional: built on every first sight of a token, where keywords cost measurably.
    return _new_token_info(claims.jti, claims.iat, claims.exp, claims.kid)


def principal_parts(
    claims: AccessClaims,
) -> tuple[TokenInfo, Mapping[str, Any], int | None, bool]:
    """What a JWT mode's principal takes from verified claims besides the user and roles:
    its token info, custom claims, ``auth_time`` and ``remember`` (one call: the cold path)."""
    token = _new_token_info(claims.jti, claims.iat, claims.exp, claims.kid)
    extra = claims.extra
    if not extra:  # a remembered login minted before step-up, without custom claims
        return token, EMPTY_CLAIMS, None, True
    return token, public_claims(extra), auth_time_claim(claims), remember_claim(claims)


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
        # jws (signed) or jwe (encrypted): the same claims, cache and revocation either way.
        self._issue_token = ISSUERS[settings.token_format]
        self._verify_token = VERIFIERS[settings.token_format]
        # Bound once: _checked runs on every request of the JWT modes.
        self._now = ctx.clock.now
        self._is_fresh = ctx.freshness.is_fresh
        self._check_credential = ctx.revocation.check_credential
        self._check_roles_version = ctx.revocation.check_roles_version
        # Tokens checked / verified from scratch, for the metrics (hits are the difference).
        self.lookups = 0
        self.cold_verifications = 0

    def __len__(self) -> int:
        return len(self._verified)

    def forget_all(self) -> None:
        """Drop every cached verification (the key ring changed)."""
        self._verified.clear()

    def forget(self, token: str) -> None:
        """Drop every cache the token's verification would hit: its verified claims and
        the module-wide cache of checked headers (the benchmark's "cold")."""
        self._verified.pop(token, None)
        forget_known_headers()

    def issue(
        self,
        user_id: str,
        roles: tuple[str, ...],
        *,
        generation: int,
        handle: str | None = None,
        claims: Mapping[str, Any] | None = None,
        roles_version: int = 0,
        auth_time: float | None = None,
        remember: bool = True,
    ) -> tuple[str, AccessClaims]:
        """A new access token and its claims; ``handle`` (the session handle of a refresh
        family) travels as the ``sid`` claim, the application's custom ``claims`` beside
        the registered ones, ``roles_version`` (when above 0) as ``rv``, step-up's
        ``auth_time`` (Unix seconds) and ``remember=False`` as ``"rem": false``."""
        settings = self._ctx.settings
        extra: dict[str, Any] = dict(claims or {})
        if roles_version:
            extra["rv"] = roles_version
        if auth_time is not None:
            extra["auth_time"] = int(auth_time)
        if not remember:
            extra["rem"] = False
        return self._issue_token(
            self._ctx.keys.ring.signing_key(),
            issuer=settings.issuer,
            audience=settings.audience,
            subject=user_id,
            roles=roles,
            now=self._now(),
            ttl_seconds=settings.access_ttl_seconds,
            handle=handle,
            gen=generation,
            extra=extra,
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
        principal = self._checked(token, to_principal).principal
        if principal is None:  # pragma: no cover - _verify_cold built it with to_principal
            raise AuthenticationError(reason="no principal for the token")
        return principal

    def _checked(self, token: str, to_principal: PrincipalFactory | None) -> _VerifiedToken:
        """The one path every token takes, cached or not: the entry for a token valid at
        this instant (verified from scratch unless a cached one is), then the freshness
        rule and the revocation state (jti, session handle, the user's generation)."""
        now = self._now()
        self.lookups += 1
        entry = self._verified.get(token)
        if (
            entry is None
            or not entry.valid_from <= now < entry.valid_until
            or (to_principal is not None and entry.to_principal is not to_principal)
        ):
            # Unknown, outside its validity (the cold checks decide and say why) or built
            # for another factory: verify from scratch.
            entry = self._verify_cold(token, now, to_principal)
        if self._fail_closed and not self._is_fresh():
            raise StoreUnavailable(reason="revocation state is stale and fail_closed is set")
        claims = entry.claims
        self._check_credential(claims.sub, claims.gen, claims.sid, claims.jti)
        self._check_roles_version(claims.sub, entry.roles_version)
        return entry

    def _verify_cold(
        self, token: str, now: float, to_principal: PrincipalFactory | None
    ) -> _VerifiedToken:
        self.cold_verifications += 1
        self._verified.pop(token, None)
        ring = self._ctx.keys.ring
        claims = self._verify_token(
            token,
            ring,
            issuer=self._issuer,
            audience=self._audience,
            now=now,
            leeway=self._leeway,
            max_age=self._max_age,
        )
        valid_from, valid_until = validity_window(
            claims,
            leeway=self._leeway,
            max_age=self._max_age,
            retire_after=ring.retire_after(claims.kid),
        )
        entry = _VerifiedToken(
            claims,
            None if to_principal is None else to_principal(claims),
            to_principal,
            valid_from,
            valid_until,
        )
        self._verified[token] = entry
        if len(self._verified) > self._max_entries:
            # WSGI worker threads verify here too, while the loop thread may empty the
            # cache (forget_all): a pop that finds nothing left is fine.
            with contextlib.suppress(KeyError):
                self._verified.popitem(last=False)
        return entry
