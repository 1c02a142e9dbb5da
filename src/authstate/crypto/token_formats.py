"""The two access-token formats and the functions that issue and verify each.

``jws`` (the default): a signed JWT anyone holding it can read and any JWKS holder can
verify. ``jwe``: an encrypted one (``crypto.jwe``) that only the issuing nodes can read.
Both carry the same claims and go through the same claim rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, Literal, Protocol, TypeAlias, get_args

from authstate.crypto import compact, jwe
from authstate.crypto.claims import AccessClaims
from authstate.crypto.jwe import issue_encrypted_access_token, verify_encrypted_access_token
from authstate.crypto.jwt import issue_access_token, verify_access_token
from authstate.crypto.keys import KeyRing, SigningKey

TokenFormat: TypeAlias = Literal["jws", "jwe"]
TOKEN_FORMATS: Final[frozenset[str]] = frozenset(get_args(TokenFormat))


class IssueToken(Protocol):
    def __call__(
        self,
        key: SigningKey,
        *,
        issuer: str,
        audience: str,
        subject: str,
        roles: Sequence[str],
        now: float,
        ttl_seconds: int,
        handle: str | None = ...,
        gen: int = ...,
        jti: str | None = ...,
        extra: Mapping[str, object] | None = ...,
    ) -> tuple[str, AccessClaims]: ...


class VerifyToken(Protocol):
    def __call__(
        self,
        token: str,
        ring: KeyRing,
        *,
        issuer: str,
        audience: str,
        now: float,
        leeway: int = ...,
        typ: str = ...,
        max_age: int | None = ...,
    ) -> AccessClaims: ...


ISSUERS: Final[dict[str, IssueToken]] = {
    "jws": issue_access_token,
    "jwe": issue_encrypted_access_token,
}
VERIFIERS: Final[dict[str, VerifyToken]] = {
    "jws": verify_access_token,
    "jwe": verify_encrypted_access_token,
}


def forget_known_headers() -> None:
    """Empty both formats' caches of checked headers (the benchmark's "cold")."""
    compact.forget_known_headers()
    jwe.forget_known_headers()
