"""Access tokens: issuing them, and verifying them (front layer, key, signature, claims).

The front layer is ``authstate.crypto.compact``, the claim rules ``authstate.crypto.claims``;
this module puts them in order. The key comes from the local ring by ``kid``, the algorithm
from that key, and the claims are checked with their exact JSON types.

Every refusal raises ``InvalidToken`` whose ``reason`` (for the log) names the rule that
failed and never echoes the token or a secret.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Final

from authstate.crypto._json import dumps_compact
from authstate.crypto.claims import (
    _NO_EXTRA,
    _REGISTERED_CLAIMS,
    MAX_SAFE_INT,
    AccessClaims,
    check_claims,
)
from authstate.crypto.compact import (
    HEADER_MEMBERS,
    MAX_HEADER_CHARS,
    MAX_TOKEN_BYTES,
    ParsedToken,
    parse_compact,
    parse_front_known,
    split_compact,
)
from authstate.crypto.ids import b64url_encode, new_jti
from authstate.crypto.keys import KeyRing, SigningKey
from authstate.errors import InvalidToken

# The token API in one place: the front layer and the claims are re-exported for callers
# that verify or inspect tokens.
__all__ = [
    "ACCESS_TOKEN_TYPE",
    "HEADER_MEMBERS",
    "MAX_HEADER_CHARS",
    "MAX_SAFE_INT",
    "MAX_TOKEN_BYTES",
    "AccessClaims",
    "ParsedToken",
    "encode",
    "issue_access_token",
    "parse_compact",
    "split_compact",
    "verify_access_token",
    "verify_signature",
]

ACCESS_TOKEN_TYPE: Final = "at+jwt"  # noqa: S105  # a media type, not a secret


# -- signing ----------------------------------------------------------------------------------
def header_segment(key: SigningKey, typ: str) -> tuple[str, dict[str, str]]:
    """The protected header ``key`` writes on a token of type ``typ``: its base64url text
    and the header itself (what that text parses to)."""
    header = {"alg": key.alg, "typ": typ, "kid": key.kid}
    return b64url_encode(dumps_compact(header)), header


def _access_header(key: SigningKey) -> tuple[str, dict[str, str]]:
    """``header_segment`` of an access token: the ring's table of known headers."""
    return header_segment(key, ACCESS_TOKEN_TYPE)


def encode(claims: Mapping[str, object], key: SigningKey, *, typ: str = ACCESS_TOKEN_TYPE) -> str:
    """A compact JWS of ``claims`` signed by ``key``; header ``{"alg","typ","kid"}``.

    Raises ``ValueError`` (or ``TypeError``) for claims that are not strict JSON or a token
    over ``MAX_TOKEN_BYTES``, and ``ConfigurationError`` for a verify-only key.
    """
    header_b64, _ = header_segment(key, typ)
    signing_input = f"{header_b64}.{b64url_encode(dumps_compact(claims))}"
    token = f"{signing_input}.{b64url_encode(key.sign(signing_input.encode('ascii')))}"
    if len(token) > MAX_TOKEN_BYTES:
        raise ValueError(
            f"the token would be {len(token)} bytes, over the {MAX_TOKEN_BYTES}-byte cookie cap"
        )
    return token


def issue_access_token(
    key: SigningKey,
    *,
    issuer: str,
    audience: str,
    subject: str,
    roles: Sequence[str],
    now: float,
    ttl_seconds: int,
    handle: str | None = None,
    gen: int = 0,
    jti: str | None = None,
    encoder: Callable[[Mapping[str, object], SigningKey], str] | None = None,
    extra: Mapping[str, object] | None = None,
) -> tuple[str, AccessClaims]:
    """Sign an access token valid from ``int(now)`` for ``ttl_seconds``; a fresh ``jti``
    unless given; the session ``handle`` (of a refresh family), if any, as the ``sid``
    claim; ``extra`` claims (none of the registered names) beside them. Returns the token
    and its claims.

    Raises ``ValueError`` for arguments the verifier would refuse (empty subject, non-positive
    lifetime, negative generation, non-string roles) or an oversized token. ``encoder``
    (default ``encode``, a JWS) turns the claims into the token: ``crypto.jwe`` passes its
    ``encrypt``.
    """
    if not subject or not isinstance(subject, str):
        raise ValueError("subject must be a non-empty string")
    if type(ttl_seconds) is not int or ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be a positive int")
    if type(gen) is not int or gen < 0:
        raise ValueError("gen must be an int >= 0")
    if isinstance(roles, str) or not all(isinstance(role, str) for role in roles):
        raise ValueError("roles must be a sequence of strings")
    extra = dict(extra or {})
    if not _REGISTERED_CLAIMS.isdisjoint(extra):
        raise ValueError("extra claims may not use a registered claim name")
    iat = int(now)
    claims = AccessClaims(
        iss=issuer,
        aud=audience,
        sub=subject,
        iat=iat,
        nbf=iat,
        exp=iat + ttl_seconds,
        jti=jti or new_jti(),
        kid=key.kid,
        roles=tuple(roles),
        sid=handle,
        gen=gen,
        extra=MappingProxyType(extra) if extra else _NO_EXTRA,
    )
    payload: dict[str, object] = {
        **extra,
        "iss": claims.iss,
        "aud": claims.aud,
        "sub": claims.sub,
        "iat": claims.iat,
        "nbf": claims.nbf,
        "exp": claims.exp,
        "jti": claims.jti,
        "roles": list(claims.roles),
        "gen": claims.gen,
    }
    if handle is not None:
        payload["sid"] = handle
    return (encode if encoder is None else encoder)(payload, key), claims


# -- verification -----------------------------------------------------------------------------
def verify_signature(
    ring: KeyRing, *, alg: str, kid: str, signing_input: bytes, signature: bytes, now: float
) -> SigningKey:
    """Check a signature with the ring's key named ``kid``; return that key.

    The header's ``alg`` must equal the key's own algorithm exactly: it is checked, never
    used to choose how to verify. Raises ``InvalidToken``.
    """
    key = ring.verification_key(kid, now=now)
    if alg != key.alg:
        raise InvalidToken(reason="header alg does not match the key's algorithm")
    key.verify(signing_input, signature)
    return key


def verify_access_token(
    token: str,
    ring: KeyRing,
    *,
    issuer: str,
    audience: str,
    now: float,
    leeway: int = 30,
    typ: str = ACCESS_TOKEN_TYPE,
    max_age: int | None = None,
) -> AccessClaims:
    """The claims of a valid access token; ``InvalidToken`` for anything else.

    Checks, in order: the front layer (``parse_compact``), the key by ``kid`` and its
    algorithm, the signature, ``typ``, then the claims: ``exp``/``iat``/``nbf`` JSON integers
    in [0, 2**53) (not bool, float or string), ``iss`` equal to ``issuer``, ``aud`` equal to
    ``audience`` or a list of strings containing it, ``sub``/``jti`` non-empty strings,
    optional ``roles`` (list of strings), ``sid`` (string) and ``gen`` (int >= 0). ``now``
    is Unix seconds; ``leeway`` (seconds) tolerates clock skew on ``exp``/``nbf``/``iat``;
    ``max_age`` (seconds) refuses tokens issued longer ago whatever their ``exp``.
    ``claims.validity_window`` says until when these checks keep passing.
    """
    # Our own tokens' headers are known to the ring (KeyRing.header_table): no header parse,
    # and the key comes with the header; any other spelling is parsed and checked in full.
    header, claims, signing_input, signature, key = parse_front_known(
        token, ring.header_table(_access_header)
    )
    if key is None:
        key = verify_signature(
            ring,
            alg=header["alg"],
            kid=header["kid"],
            signing_input=signing_input,
            signature=signature,
            now=now,
        )
    else:
        # The header is the one this key writes: its kid names this key, its alg is the
        # key's own. What verification_key checks beyond that: the key still verifies.
        if not key.verifies_at(now):
            raise InvalidToken(reason="key retired")
        key.verify(signing_input, signature)
    if header["typ"] != typ:
        raise InvalidToken(reason="wrong typ")
    return check_claims(
        claims,
        kid=key.kid,
        issuer=issuer,
        audience=audience,
        now=now,
        leeway=leeway,
        max_age=max_age,
    )
