"""Access tokens: issuing, the strict front layer every token goes through, and verification.

The front layer (``parse_compact``) refuses, before any key is touched, what JOSE libraries
tend to accept: oversized input, anything but exactly three compact segments, non-canonical
base64url, non-UTF-8 or duplicate-member JSON, NaN/Infinity, and every header member but
``alg``, ``typ`` and ``kid`` (so ``jwk``/``jku``/``x5u``/``x5c``/``crit``/``b64``/``zip``/``cty``
can never steer verification). Then the key comes from the local ring by ``kid``, the
algorithm from that key, and the claims are checked with their exact JSON types.

Every refusal raises ``InvalidToken`` whose ``reason`` (for the log) names the rule that
failed and never echoes the token or a secret.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, NoReturn

from authstate.crypto._json import StrictJSONError, dumps_compact, loads_object
from authstate.crypto.ids import b64url_decode, b64url_encode, new_jti
from authstate.crypto.keys import SUPPORTED_ALGORITHMS, KeyRing, SigningKey
from authstate.errors import InvalidToken

MAX_TOKEN_BYTES: Final = 4096  # what a browser keeps in one cookie
MAX_HEADER_CHARS: Final = 512  # encoded; ours is about 100
ACCESS_TOKEN_TYPE: Final = "at+jwt"  # noqa: S105  # a media type, not a secret
HEADER_MEMBERS: Final = frozenset({"alg", "typ", "kid"})
# Integers beyond I-JSON's safe range (RFC 7493 §2.2) mean different things to different
# parsers; an exp of 10**2999 would also never expire.
MAX_SAFE_INT: Final = 2**53 - 1

# Named in log reasons when present; any other unexpected member is reported generically
# so the log never carries attacker-chosen text.
_REFUSED_HEADER_MEMBERS: Final = frozenset(
    {"jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256", "crit", "zip", "b64", "cty", "enc", "epk"}
)
_REGISTERED_CLAIMS: Final = frozenset(
    {"iss", "aud", "sub", "iat", "nbf", "exp", "jti", "roles", "sid", "gen"}
)


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """The verified content of an access token. Times are integer Unix seconds.

    ``aud`` is the audience the token was accepted for; ``kid`` names the key that signed
    it; ``gen`` is the user's revocation generation at issue; ``extra`` holds any other
    claims, read-only.
    """

    iss: str
    aud: str
    sub: str
    iat: int
    nbf: int
    exp: int
    jti: str
    kid: str
    roles: tuple[str, ...]
    sid: str | None
    gen: int
    extra: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}), hash=False)


@dataclass(frozen=True, slots=True)
class ParsedToken:
    """A token that passed the front layer; its signature is NOT checked yet.

    ``header`` has exactly the string members ``alg``, ``typ`` and ``kid``.
    """

    header: dict[str, str]
    claims: dict[str, object]
    signing_input: bytes  # ASCII "header.payload", what the signature covers
    signature: bytes


# -- the front layer --------------------------------------------------------------------------
def split_compact(token: str | bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """Structural checks and strict base64url decoding of a compact JWS.

    Returns ``(header_json, payload, signing_input, signature)`` as bytes. Raises
    ``InvalidToken`` for: more than ``MAX_TOKEN_BYTES``, anything but ``A-Z a-z 0-9 - _ .``,
    anything but three non-empty segments, a header segment over ``MAX_HEADER_CHARS``, and
    padding or non-canonical trailing bits.
    """
    if not isinstance(token, str | bytes):
        raise InvalidToken(reason="token is not text")
    if len(token) > MAX_TOKEN_BYTES:  # before any other work
        raise InvalidToken(reason="token too large")
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidToken(reason="token is not ASCII") from None
    segments = token.split(".")
    if len(segments) != 3:
        raise InvalidToken(reason=f"token has {len(segments)} segments, not 3")
    header_b64, payload_b64, signature_b64 = segments
    if not (header_b64 and payload_b64 and signature_b64):
        raise InvalidToken(reason="empty segment in token")
    if len(header_b64) > MAX_HEADER_CHARS:
        raise InvalidToken(reason="header too large")
    try:
        # b64url_decode enforces the alphabet, so no other character gets through.
        header = b64url_decode(header_b64)
        payload = b64url_decode(payload_b64)
        signature = b64url_decode(signature_b64)
    except ValueError as exc:
        raise InvalidToken(reason=f"bad base64url: {exc}") from None
    signing_input = token[: len(header_b64) + 1 + len(payload_b64)].encode("ascii")
    return header, payload, signing_input, signature


def parse_compact(token: str | bytes) -> ParsedToken:
    """The strict front layer: ``split_compact``, then strict JSON for header and claims
    and the header allowlist (exactly ``alg``, ``typ``, ``kid``, all strings, ``alg``
    one of ours, compared case-sensitively). Raises ``InvalidToken``.

    The signature is not checked: use ``verify_access_token`` for anything you trust.
    """
    header_json, payload, signing_input, signature = split_compact(token)
    try:
        header = loads_object(header_json)
    except StrictJSONError as exc:
        raise InvalidToken(reason=f"header: {exc}") from None
    if header.keys() != HEADER_MEMBERS:
        _refuse_header_members(header.keys())
    if not all(type(value) is str for value in header.values()):
        raise InvalidToken(reason="header alg, typ and kid must be strings")
    if header["alg"] not in SUPPORTED_ALGORITHMS:
        raise InvalidToken(reason="header alg is not a supported algorithm")
    try:
        claims = loads_object(payload)
    except StrictJSONError as exc:
        raise InvalidToken(reason=f"claims: {exc}") from None
    return ParsedToken(header, claims, signing_input, signature)


def _refuse_header_members(members: Iterable[str]) -> NoReturn:
    present = set(members)
    # Name a known-dangerous member first: in a log it is the sign of an attack.
    named = sorted(present & _REFUSED_HEADER_MEMBERS)
    if named:
        raise InvalidToken(reason=f"header member {named[0]} refused")
    if present - HEADER_MEMBERS:
        raise InvalidToken(reason="header has a member outside alg, typ, kid")
    raise InvalidToken(reason=f"header lacks {', '.join(sorted(HEADER_MEMBERS - present))}")


# -- signing ----------------------------------------------------------------------------------
def encode(claims: Mapping[str, object], key: SigningKey, *, typ: str = ACCESS_TOKEN_TYPE) -> str:
    """A compact JWS of ``claims`` signed by ``key``; header ``{"alg","typ","kid"}``.

    Raises ``ValueError`` (or ``TypeError``) for claims that are not strict JSON or a token
    over ``MAX_TOKEN_BYTES``, and ``ConfigurationError`` for a verify-only key.
    """
    header = dumps_compact({"alg": key.alg, "typ": typ, "kid": key.kid})
    signing_input = f"{b64url_encode(header)}.{b64url_encode(dumps_compact(claims))}"
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
    sid: str | None = None,
    gen: int = 0,
    jti: str | None = None,
) -> tuple[str, AccessClaims]:
    """Sign an access token valid from ``int(now)`` for ``ttl_seconds``; a fresh ``jti``
    unless given. Returns the token and its claims.

    Raises ``ValueError`` for arguments the verifier would refuse (empty subject, non-positive
    lifetime, negative generation, non-string roles) or an oversized token.
    """
    if not subject or not isinstance(subject, str):
        raise ValueError("subject must be a non-empty string")
    if type(ttl_seconds) is not int or ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be a positive int")
    if type(gen) is not int or gen < 0:
        raise ValueError("gen must be an int >= 0")
    if isinstance(roles, str) or not all(isinstance(role, str) for role in roles):
        raise ValueError("roles must be a sequence of strings")
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
        sid=sid,
        gen=gen,
    )
    payload: dict[str, object] = {
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
    if sid is not None:
        payload["sid"] = sid
    return encode(payload, key), claims


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
    """
    parsed = parse_compact(token)
    header = parsed.header
    key = verify_signature(
        ring,
        alg=header["alg"],
        kid=header["kid"],
        signing_input=parsed.signing_input,
        signature=parsed.signature,
        now=now,
    )
    if header["typ"] != typ:
        raise InvalidToken(reason="wrong typ")
    return _check_claims(
        parsed.claims,
        kid=key.kid,
        issuer=issuer,
        audience=audience,
        now=now,
        leeway=leeway,
        max_age=max_age,
    )


def _check_claims(
    claims: dict[str, object],
    *,
    kid: str,
    issuer: str,
    audience: str,
    now: float,
    leeway: int,
    max_age: int | None,
) -> AccessClaims:
    iat = _numeric_date(claims, "iat")
    nbf = _numeric_date(claims, "nbf")
    exp = _numeric_date(claims, "exp")
    if claims.get("iss") != issuer or type(claims["iss"]) is not str:
        raise InvalidToken(reason="wrong or missing iss")
    aud = claims.get("aud")
    if not (
        (type(aud) is str and aud == audience)
        or (type(aud) is list and audience in aud and all(type(a) is str for a in aud))
    ):
        raise InvalidToken(reason="wrong or missing aud")
    sub = _non_empty_string(claims, "sub")
    jti = _non_empty_string(claims, "jti")
    roles = claims.get("roles", [])
    if type(roles) is not list or not all(type(role) is str for role in roles):
        raise InvalidToken(reason="roles is not a list of strings")
    sid = _optional_string(claims, "sid")
    gen = claims.get("gen", 0)
    if type(gen) is not int or not 0 <= gen <= MAX_SAFE_INT:
        raise InvalidToken(reason="gen is not an int in [0, 2**53)")
    if exp <= now - leeway:
        raise InvalidToken(reason="token expired")
    if nbf > now + leeway:
        raise InvalidToken(reason="token not valid yet (nbf)")
    if iat > now + leeway:
        raise InvalidToken(reason="token issued in the future (iat)")
    if max_age is not None and now - iat > max_age + leeway:
        raise InvalidToken(reason="token older than max_age")
    extra = {name: value for name, value in claims.items() if name not in _REGISTERED_CLAIMS}
    return AccessClaims(
        iss=issuer,
        aud=audience,
        sub=sub,
        iat=iat,
        nbf=nbf,
        exp=exp,
        jti=jti,
        kid=kid,
        roles=tuple(roles),
        sid=sid,
        gen=gen,
        extra=MappingProxyType(extra),
    )


def _numeric_date(claims: Mapping[str, object], name: str) -> int:
    value = claims.get(name)
    # type() rather than isinstance: bool is an int subclass, and true must not mean 1.
    if type(value) is not int or not 0 <= value <= MAX_SAFE_INT:
        raise InvalidToken(reason=f"{name} is missing or not an integer in [0, 2**53)")
    return value


def _optional_string(claims: Mapping[str, object], name: str) -> str | None:
    if name not in claims:
        return None
    value = claims[name]
    if type(value) is not str:  # null included: absent is the way to say "none"
        raise InvalidToken(reason=f"{name} is not a string")
    return value


def _non_empty_string(claims: Mapping[str, object], name: str) -> str:
    value = claims.get(name)
    if type(value) is not str or not value:
        raise InvalidToken(reason=f"{name} is missing or not a non-empty string")
    return value
