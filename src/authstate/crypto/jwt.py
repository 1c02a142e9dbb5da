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

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, NoReturn

from authstate.crypto._json import StrictJSONError, dumps_compact, loads_object
from authstate.crypto.ids import b64url_decode_alphabet_checked, b64url_encode, new_jti
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
_NO_EXTRA: Final[Mapping[str, object]] = MappingProxyType({})


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
# Three non-empty segments of the base64url alphabet: the shape of every token we accept,
# checked in one pass. A token of any other shape takes the slow path, which says why.
_COMPACT_RE: Final = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)")
# Header segment text -> the header it parses to, for headers that passed every check.
# A node sees a handful (one per key); the same text always parses the same, so a hit
# skips base64, JSON and the allowlist. Bounded: junk headers only evict each other.
_HEADER_CACHE_ENTRIES: Final = 64
_known_headers: dict[str, dict[str, str]] = {}


def split_compact(token: str | bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """Structural checks and strict base64url decoding of a compact JWS.

    Returns ``(header_json, payload, signing_input, signature)`` as bytes. Raises
    ``InvalidToken`` for: more than ``MAX_TOKEN_BYTES``, anything but ``A-Z a-z 0-9 - _ .``,
    anything but three non-empty segments, a header segment over ``MAX_HEADER_CHARS``, and
    padding or non-canonical trailing bits.
    """
    header_b64, payload_b64, signature_b64 = _segments(token)
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    return (
        _decode_segment(header_b64),
        _decode_segment(payload_b64),
        signing_input,
        _decode_segment(signature_b64),
    )


def _segments(token: str | bytes) -> tuple[str, str, str]:
    """The three segments of a token of the right size, shape and alphabet."""
    if not isinstance(token, str | bytes):
        raise InvalidToken(reason="token is not text")
    if len(token) > MAX_TOKEN_BYTES:  # before any other work
        raise InvalidToken(reason="token too large")
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidToken(reason="token is not ASCII") from None
    match = _COMPACT_RE.fullmatch(token)
    if match is None:
        _refuse_shape(token)
    header_b64, payload_b64, signature_b64 = match.groups()
    if len(header_b64) > MAX_HEADER_CHARS:
        raise InvalidToken(reason="header too large")
    return header_b64, payload_b64, signature_b64


def _refuse_shape(token: str) -> NoReturn:
    segments = token.split(".")
    if len(segments) != 3:
        raise InvalidToken(reason=f"token has {len(segments)} segments, not 3")
    if not all(segments):
        raise InvalidToken(reason="empty segment in token")
    raise InvalidToken(reason="bad base64url: not base64url")


def _decode_segment(segment: str) -> bytes:
    try:
        return b64url_decode_alphabet_checked(segment)
    except ValueError as exc:
        raise InvalidToken(reason=f"bad base64url: {exc}") from None


def _header(header_b64: str) -> dict[str, str]:
    """The checked header of a segment: exactly string ``alg``/``typ``/``kid``, ``alg`` ours.

    Returns a shared dictionary: callers must not change it.
    """
    header = _known_headers.get(header_b64)
    if header is not None:
        return header
    try:
        parsed = loads_object(_decode_segment(header_b64))
    except StrictJSONError as exc:
        raise InvalidToken(reason=f"header: {exc}") from None
    if parsed.keys() != HEADER_MEMBERS:
        _refuse_header_members(parsed.keys())
    if not all(type(value) is str for value in parsed.values()):
        raise InvalidToken(reason="header alg, typ and kid must be strings")
    if parsed["alg"] not in SUPPORTED_ALGORITHMS:
        raise InvalidToken(reason="header alg is not a supported algorithm")
    if len(_known_headers) >= _HEADER_CACHE_ENTRIES:
        _known_headers.clear()
    _known_headers[header_b64] = parsed
    return parsed


def _front(token: str | bytes) -> tuple[dict[str, str], dict[str, object], bytes, bytes]:
    """``parse_compact`` without the result object: the per-request path."""
    header_b64, payload_b64, signature_b64 = _segments(token)
    header = _header(header_b64)
    # The signature is decoded before the claims are parsed, as split_compact orders it,
    # so a token bad in both places is refused with the same reason either way.
    payload = _decode_segment(payload_b64)
    signature = _decode_segment(signature_b64)
    try:
        claims = loads_object(payload)
    except StrictJSONError as exc:
        raise InvalidToken(reason=f"claims: {exc}") from None
    return header, claims, f"{header_b64}.{payload_b64}".encode("ascii"), signature


def parse_compact(token: str | bytes) -> ParsedToken:
    """The strict front layer: ``split_compact``, then strict JSON for header and claims
    and the header allowlist (exactly ``alg``, ``typ``, ``kid``, all strings, ``alg``
    one of ours, compared case-sensitively). Raises ``InvalidToken``.

    The signature is not checked: use ``verify_access_token`` for anything you trust.
    """
    header, claims, signing_input, signature = _front(token)
    return ParsedToken(dict(header), claims, signing_input, signature)


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
    handle: str | None = None,
    gen: int = 0,
    jti: str | None = None,
) -> tuple[str, AccessClaims]:
    """Sign an access token valid from ``int(now)`` for ``ttl_seconds``; a fresh ``jti``
    unless given; the session ``handle`` (of a refresh family), if any, as the ``sid``
    claim. Returns the token and its claims.

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
        sid=handle,
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
    if handle is not None:
        payload["sid"] = handle
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
    return verify_access_token_with_key(
        token,
        ring,
        issuer=issuer,
        audience=audience,
        now=now,
        leeway=leeway,
        typ=typ,
        max_age=max_age,
    )[0]


def verify_access_token_with_key(
    token: str,
    ring: KeyRing,
    *,
    issuer: str,
    audience: str,
    now: float,
    leeway: int = 30,
    typ: str = ACCESS_TOKEN_TYPE,
    max_age: int | None = None,
) -> tuple[AccessClaims, SigningKey]:
    """``verify_access_token``, also returning the key that verified the token."""
    header, claims, signing_input, signature = _front(token)
    key = verify_signature(
        ring,
        alg=header["alg"],
        kid=header["kid"],
        signing_input=signing_input,
        signature=signature,
        now=now,
    )
    if header["typ"] != typ:
        raise InvalidToken(reason="wrong typ")
    return (
        _check_claims(
            claims,
            kid=key.kid,
            issuer=issuer,
            audience=audience,
            now=now,
            leeway=leeway,
            max_age=max_age,
        ),
        key,
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
    # Written out rather than through helpers: this runs on every first sight of a token.
    # type() rather than isinstance: bool is an int subclass, and true must not mean 1.
    get = claims.get
    iat, nbf, exp = get("iat"), get("nbf"), get("exp")
    if type(iat) is not int or not 0 <= iat <= MAX_SAFE_INT:
        _refuse_numeric_date("iat")
    if type(nbf) is not int or not 0 <= nbf <= MAX_SAFE_INT:
        _refuse_numeric_date("nbf")
    if type(exp) is not int or not 0 <= exp <= MAX_SAFE_INT:
        _refuse_numeric_date("exp")
    iss = get("iss")
    if iss != issuer or type(iss) is not str:
        raise InvalidToken(reason="wrong or missing iss")
    aud = get("aud")
    if not (
        (type(aud) is str and aud == audience)
        or (type(aud) is list and audience in aud and all(type(a) is str for a in aud))
    ):
        raise InvalidToken(reason="wrong or missing aud")
    sub, jti = get("sub"), get("jti")
    if type(sub) is not str or not sub:
        _refuse_non_empty_string("sub")
    if type(jti) is not str or not jti:
        _refuse_non_empty_string("jti")
    roles = get("roles", [])
    if type(roles) is not list or not all(type(role) is str for role in roles):
        raise InvalidToken(reason="roles is not a list of strings")
    sid = get("sid")
    if (sid is not None or "sid" in claims) and type(sid) is not str:
        raise InvalidToken(reason="sid is not a string")  # null too: absent says "none"
    gen = get("gen", 0)
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
    if claims.keys() <= _REGISTERED_CLAIMS:
        extra = _NO_EXTRA
    else:
        extra = MappingProxyType(
            {name: value for name, value in claims.items() if name not in _REGISTERED_CLAIMS}
        )
    return AccessClaims(
        issuer, audience, sub, iat, nbf, exp, jti, kid, tuple(roles), sid, gen, extra
    )


def _refuse_numeric_date(name: str) -> NoReturn:
    raise InvalidToken(reason=f"{name} is missing or not an integer in [0, 2**53)")


def _refuse_non_empty_string(name: str) -> NoReturn:
    raise InvalidToken(reason=f"{name} is missing or not a non-empty string")
