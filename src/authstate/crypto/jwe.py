"""Encrypted access tokens: compact JWE with ``alg: dir`` and ``enc: A256GCM`` (RFC 7516,
RFC 7518 §4.5 and §5.3), opt-in with ``AUTHSTATE_TOKEN_FORMAT=jwe``.

What is inside: the claims themselves, not a signed JWS (no nested JWT, no ``cty``).
AES-GCM authenticates the protected header and the claims under a key only the issuing
nodes hold (it is derived from the private half of a ring key), so a signature inside
would prove nothing more to anyone able to decrypt: whoever can decrypt can also encrypt,
and a nested JWS would cost a signature, a verification and a third more bytes. A resource
service that holds only the JWKS cannot read such a token at all (docs/concepts.md).

The content key of ring key ``kid`` is HKDF-SHA256 over that key's private material with
info ``authstate/jwe/A256GCM/<kid>``: keys rotate with the ring, a retired ring key stops
decrypting when it stops verifying, and a verify-only key (from a JWKS) cannot decrypt.
Content keys are never published: the JWKS holds public signing keys only.

The front layer is as strict as the JWS one (``crypto.compact``): at most
``MAX_TOKEN_BYTES``, exactly five segments of canonical base64url with an EMPTY encrypted
key (``dir``), a 12-byte IV and a 16-byte tag, a strict-JSON header with exactly the
string members ``alg`` (``dir``), ``enc`` (``A256GCM``), ``kid`` and ``typ`` (so ``zip``,
``cty``, ``crit``, ``jku``, ``epk`` ... never steer anything), then strict JSON claims
(depth-capped) checked as for a JWS. Every refusal raises ``InvalidToken``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Final, NoReturn
from weakref import WeakKeyDictionary

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from authstate.crypto._json import StrictJSONError, dumps_compact, loads_object
from authstate.crypto.algorithms import COORD_BYTES
from authstate.crypto.claims import AccessClaims, check_claims
from authstate.crypto.compact import MAX_HEADER_CHARS, MAX_TOKEN_BYTES, decode_segment, token_text
from authstate.crypto.ids import b64url_encode
from authstate.crypto.jwt import ACCESS_TOKEN_TYPE, issue_access_token
from authstate.crypto.keys import KeyRing, SigningKey
from authstate.crypto.sealing import derive_key
from authstate.errors import ConfigurationError, InvalidToken

JWE_ALG: Final = "dir"
JWE_ENC: Final = "A256GCM"
JWE_HEADER_MEMBERS: Final = frozenset({"alg", "enc", "kid", "typ"})
IV_BYTES: Final = 12  # the 96-bit nonce AES-GCM is designed for (RFC 7518 §5.3)
TAG_BYTES: Final = 16
CONTENT_KEY_BYTES: Final = 32  # A256GCM

# Named in log reasons when present, as in crypto.compact; others are reported generically.
_REFUSED_HEADER_MEMBERS: Final = frozenset(
    {
        "zip",
        "cty",
        "crit",
        "jku",
        "jwk",
        "x5u",
        "x5c",
        "x5t",
        "x5t#S256",
        "epk",
        "apu",
        "apv",
        "iv",
        "tag",
        "p2s",
        "p2c",
        "b64",
    }
)

# header . (empty encrypted key) . iv . ciphertext . tag: the one shape accepted, in one pass.
_JWE_RE: Final = re.compile(
    r"([A-Za-z0-9_-]+)\.\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)"
)
_HEADER_CACHE_ENTRIES: Final = 64
_known_headers: dict[str, dict[str, str]] = {}
# One AESGCM object per ring key, dropped with the key (keys compare by identity).
_aeads: WeakKeyDictionary[SigningKey, AESGCM] = WeakKeyDictionary()


# -- content keys -----------------------------------------------------------------------------
def content_key(key: SigningKey) -> bytes:
    """The 32-byte A256GCM key of ring key ``key``: HKDF-SHA256 over its private material
    (the HMAC secret, the raw Ed25519 seed or the P-256 scalar) with info
    ``authstate/jwe/A256GCM/<kid>``.

    Raises ``ConfigurationError`` for a verify-only key. The result is a secret: never log
    or publish it (tests and ``joserfc`` interop use it).
    """
    return derive_key(_private_material(key), f"jwe/{JWE_ENC}/{key.kid}", CONTENT_KEY_BYTES)


def _private_material(key: SigningKey) -> bytes:
    # Canonical raw bytes, not PKCS#8 DER: an encoding detail of one OpenSSL version must
    # never change the content key another node derives.
    private = key.private_key
    if private is None:
        raise ConfigurationError(f"key {key.kid} is verify-only and cannot encrypt or decrypt")
    if isinstance(private, bytes):
        return private
    if isinstance(private, Ed25519PrivateKey):
        return private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
    if isinstance(private, ec.EllipticCurvePrivateKey):
        return private.private_numbers().private_value.to_bytes(COORD_BYTES, "big")
    raise ConfigurationError(f"key {key.kid}: unsupported key type")  # pragma: no cover


def _aead(key: SigningKey) -> AESGCM:
    aead = _aeads.get(key)
    if aead is None:
        aead = _aeads[key] = AESGCM(content_key(key))
    return aead


# -- encrypting -------------------------------------------------------------------------------
def _header_segment(key: SigningKey, typ: str) -> tuple[str, dict[str, str]]:
    """The protected header ``key`` writes on a JWE of type ``typ``: text and header."""
    header = {"alg": JWE_ALG, "enc": JWE_ENC, "kid": key.kid, "typ": typ}
    return b64url_encode(dumps_compact(header)), header


def _access_header(key: SigningKey) -> tuple[str, dict[str, str]]:
    """``_header_segment`` of an access token: the ring's table of known headers."""
    return _header_segment(key, ACCESS_TOKEN_TYPE)


def encrypt(claims: Mapping[str, object], key: SigningKey, *, typ: str = ACCESS_TOKEN_TYPE) -> str:
    """A compact JWE of ``claims`` under ``key``'s content key; a fresh random IV each call.

    Header ``{"alg":"dir","enc":"A256GCM","kid","typ"}``, authenticated as the AAD. Raises
    ``ValueError`` (or ``TypeError``) for claims that are not strict JSON or a token over
    ``MAX_TOKEN_BYTES``, and ``ConfigurationError`` for a verify-only key.
    """
    header_b64, _ = _header_segment(key, typ)
    iv = secrets.token_bytes(IV_BYTES)
    sealed = _aead(key).encrypt(iv, dumps_compact(claims), header_b64.encode("ascii"))
    ciphertext, tag = sealed[:-TAG_BYTES], sealed[-TAG_BYTES:]
    token = f"{header_b64}..{b64url_encode(iv)}.{b64url_encode(ciphertext)}.{b64url_encode(tag)}"
    if len(token) > MAX_TOKEN_BYTES:
        raise ValueError(
            f"the token would be {len(token)} bytes, over the {MAX_TOKEN_BYTES}-byte cookie cap"
        )
    return token


def issue_encrypted_access_token(
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
    extra: Mapping[str, object] | None = None,
) -> tuple[str, AccessClaims]:
    """``jwt.issue_access_token`` (same arguments, claims and errors), encrypted instead of
    signed."""
    return issue_access_token(
        key,
        issuer=issuer,
        audience=audience,
        subject=subject,
        roles=roles,
        now=now,
        ttl_seconds=ttl_seconds,
        handle=handle,
        gen=gen,
        jti=jti,
        extra=extra,
        encoder=encrypt,
    )


# -- the front layer --------------------------------------------------------------------------
def _segments(token: str | bytes) -> tuple[str, bytes, bytes, bytes]:
    """Header segment (text, it is the AAD), IV, ciphertext and tag of a well-shaped token."""
    token = token_text(token)
    match = _JWE_RE.fullmatch(token)
    if match is None:
        _refuse_shape(token)
    header_b64, iv_b64, ciphertext_b64, tag_b64 = match.groups()
    if len(header_b64) > MAX_HEADER_CHARS:
        raise InvalidToken(reason="header too large")
    iv, ciphertext, tag = (
        decode_segment(iv_b64),
        decode_segment(ciphertext_b64),
        decode_segment(tag_b64),
    )
    if len(iv) != IV_BYTES:
        raise InvalidToken(reason="JWE IV is not 12 bytes")
    if len(tag) != TAG_BYTES:
        raise InvalidToken(reason="JWE tag is not 16 bytes")
    return header_b64, iv, ciphertext, tag


def _refuse_shape(token: str) -> NoReturn:
    segments = token.split(".")
    if len(segments) != 5:
        raise InvalidToken(reason=f"token has {len(segments)} segments, not 5 (JWE)")
    if segments[1]:
        raise InvalidToken(reason="JWE encrypted key must be empty (alg dir)")
    if not all(segments[:1] + segments[2:]):
        raise InvalidToken(reason="empty segment in token")
    raise InvalidToken(reason="bad base64url: not base64url")


def _header(header_b64: str) -> dict[str, str]:
    """The checked header: exactly string ``alg`` = dir, ``enc`` = A256GCM, ``kid``, ``typ``.

    Returns a shared dictionary: callers must not change it.
    """
    header = _known_headers.get(header_b64)
    if header is not None:
        return header
    try:
        parsed = loads_object(decode_segment(header_b64))
    except StrictJSONError as exc:
        raise InvalidToken(reason=f"header: {exc}") from None
    if parsed.keys() != JWE_HEADER_MEMBERS:
        _refuse_header_members(parsed.keys())
    if not all(type(value) is str for value in parsed.values()):
        raise InvalidToken(reason="header alg, enc, kid and typ must be strings")
    if parsed["alg"] != JWE_ALG:
        raise InvalidToken(reason="header alg is not dir")
    if parsed["enc"] != JWE_ENC:
        raise InvalidToken(reason="header enc is not A256GCM")
    if len(_known_headers) >= _HEADER_CACHE_ENTRIES:
        _known_headers.clear()
    _known_headers[header_b64] = parsed
    return parsed


def _refuse_header_members(members: Iterable[str]) -> NoReturn:
    present = set(members)
    named = sorted(present & _REFUSED_HEADER_MEMBERS)
    if named:
        raise InvalidToken(reason=f"header member {named[0]} refused")
    if present - JWE_HEADER_MEMBERS:
        raise InvalidToken(reason="header has a member outside alg, enc, kid, typ")
    missing = ", ".join(sorted(JWE_HEADER_MEMBERS - present))
    raise InvalidToken(reason=f"header lacks {missing}")


def forget_known_headers() -> None:
    """Empty the cache of checked JWE headers (the benchmark's "cold"; correctness never
    needs this), as ``compact.forget_known_headers`` does for JWS."""
    _known_headers.clear()


# -- decrypting -------------------------------------------------------------------------------
def decrypt(token: str | bytes, ring: KeyRing, *, now: float) -> tuple[dict[str, str], bytes]:
    """The checked header and the authenticated plaintext of a compact JWE of ours.

    The key comes from the ring by ``kid`` (unknown, malformed, retired or verify-only:
    refused), the tag is checked by AES-GCM over the header segment as AAD. Raises
    ``InvalidToken``.
    """
    header_b64, iv, ciphertext, tag = _segments(token)
    # Our own tokens' headers are known to the ring (KeyRing.header_table, as for a JWS).
    known = ring.header_table(_access_header).get(header_b64)
    if known is None:
        header = _header(header_b64)
        key = ring.verification_key(header["kid"], now=now)
    else:
        header, key = known
        if not key.verifies_at(now):
            raise InvalidToken(reason="key retired")
    if not key.can_sign:
        raise InvalidToken(reason="key is verify-only: no content key")
    try:
        plaintext = _aead(key).decrypt(iv, ciphertext + tag, header_b64.encode("ascii"))
    except InvalidTag:
        raise InvalidToken(reason="JWE tag does not verify") from None
    return header, plaintext


def verify_encrypted_access_token(
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
    """``jwt.verify_access_token`` for a JWE: the front layer, the key by ``kid``, the tag,
    ``typ``, then the same claim rules. ``InvalidToken`` for anything else."""
    header, plaintext = decrypt(token, ring, now=now)
    if header["typ"] != typ:
        raise InvalidToken(reason="wrong typ")
    try:
        claims = loads_object(plaintext)
    except StrictJSONError as exc:
        raise InvalidToken(reason=f"claims: {exc}") from None
    return check_claims(
        claims,
        kid=header["kid"],
        issuer=issuer,
        audience=audience,
        now=now,
        leeway=leeway,
        max_age=max_age,
    )


def read_encrypted_claims(
    token: str | bytes, ring: KeyRing, *, now: float
) -> tuple[dict[str, str], dict[str, object]]:
    """The header and claims of a JWE of ours, decrypted but NOT checked (``exp``, ``iss``,
    revocation): for showing a token its holder already presented, never for trusting one.
    Raises ``InvalidToken``."""
    header, plaintext = decrypt(token, ring, now=now)
    try:
        return dict(header), loads_object(plaintext)
    except StrictJSONError as exc:
        raise InvalidToken(reason=f"claims: {exc}") from None
