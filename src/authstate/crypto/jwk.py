"""The JWK format (RFC 7517) of our keys: publishing a public key, reading one entry.

Only what authstate's algorithms need: OKP/Ed25519, EC/P-256 and oct (HS256, private only).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, NamedTuple

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from authstate.crypto.algorithms import (
    COORD_BYTES,
    KID_PATTERN,
    SUPPORTED_ALGORITHMS,
    Algorithm,
    PrivateKey,
    PublicKey,
    raw_public,
)
from authstate.crypto.ids import b64url_decode, b64url_encode
from authstate.errors import ConfigurationError

_KTY_FOR_ALG: Final[dict[str, str]] = {"EdDSA": "OKP", "ES256": "EC", "HS256": "oct"}
_CRV_FOR_ALG: Final[dict[str, str]] = {"EdDSA": "Ed25519", "ES256": "P-256"}
_PRIVATE_JWK_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


class JWKParts(NamedTuple):
    """What one JWK holds: ``private_key`` None for a public JWK, ``public_key`` None for
    an HS256 secret."""

    kid: str
    alg: Algorithm
    private_key: PrivateKey | None
    public_key: PublicKey | None


def public_jwk(kid: str, alg: Algorithm, public: PublicKey) -> dict[str, str]:
    """The public JWK (``kty``, ``crv``, ``x`` [, ``y``], ``kid``, ``alg``, ``use``)."""
    jwk = {"kid": kid, "alg": alg, "use": "sig"}
    if isinstance(public, Ed25519PublicKey):
        jwk |= {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw_public(public))}
    else:
        numbers = public.public_numbers()
        jwk |= {
            "kty": "EC",
            "crv": "P-256",
            "x": b64url_encode(numbers.x.to_bytes(COORD_BYTES, "big")),
            "y": b64url_encode(numbers.y.to_bytes(COORD_BYTES, "big")),
        }
    return jwk


def _jwk_member(jwk: Mapping[str, object], name: str) -> str:
    value = jwk.get(name)
    if not isinstance(value, str):
        raise ConfigurationError(f"JWK member {name!r} is missing or not a string")
    return value


def _jwk_bytes(jwk: Mapping[str, object], name: str, size: int | None) -> bytes:
    try:
        value = b64url_decode(_jwk_member(jwk, name))
    except ValueError:
        raise ConfigurationError(f"JWK member {name!r} is not strict base64url") from None
    if size is not None and len(value) != size:
        raise ConfigurationError(f"JWK member {name!r} must be {size} bytes")
    return value


def _check_jwk_metadata(jwk: Mapping[str, object], *, private: bool) -> tuple[str, Algorithm]:
    if not isinstance(jwk, Mapping) or not all(isinstance(k, str) for k in jwk):
        raise ConfigurationError("a JWK must be a JSON object")
    alg = _jwk_member(jwk, "alg")
    if alg not in SUPPORTED_ALGORITHMS:
        raise ConfigurationError(f"JWK algorithm {alg!r} is not supported")
    if _jwk_member(jwk, "kty") != _KTY_FOR_ALG[alg]:
        raise ConfigurationError(f"JWK kty does not match its algorithm {alg}")
    if alg != "HS256" and _jwk_member(jwk, "crv") != _CRV_FOR_ALG[alg]:
        raise ConfigurationError(f"JWK crv does not match its algorithm {alg}")
    if "use" in jwk and jwk["use"] != "sig":
        raise ConfigurationError("JWK use must be 'sig'")
    if "key_ops" in jwk:
        ops = jwk["key_ops"]
        if not isinstance(ops, list) or "verify" not in ops or not set(ops) <= {"sign", "verify"}:
            raise ConfigurationError("JWK key_ops must allow 'verify' and nothing but signing")
    if not private:
        if alg == "HS256":
            raise ConfigurationError("a symmetric (oct) key is never taken from a public JWK")
        if _PRIVATE_JWK_MEMBERS & jwk.keys():
            raise ConfigurationError("a public JWK must not carry private members")
    kid = _jwk_member(jwk, "kid")
    if KID_PATTERN.fullmatch(kid) is None:
        raise ConfigurationError("JWK kid must be 1-64 characters of A-Z a-z 0-9 - _")
    return kid, alg  # type: ignore[return-value]  # alg checked against SUPPORTED_ALGORITHMS


def parse_jwk(jwk: Mapping[str, object], *, private: bool) -> JWKParts:
    """The parts of a key from one JWK (``private``: a private JWK, else a public one).

    Raises ``ConfigurationError`` for private members in a public JWK, ``oct`` keys in a
    public JWK (a symmetric secret is never published), unsupported types and curves,
    metadata that does not match the algorithm, or a point that is not on the curve.
    """
    kid, alg = _check_jwk_metadata(jwk, private=private)
    if alg == "HS256":
        return JWKParts(kid, alg, _jwk_bytes(jwk, "k", None), None)
    x = _jwk_bytes(jwk, "x", COORD_BYTES)
    try:
        public: PublicKey
        if alg == "EdDSA":
            public = Ed25519PublicKey.from_public_bytes(x)
        else:
            y = _jwk_bytes(jwk, "y", COORD_BYTES)
            numbers = ec.EllipticCurvePublicNumbers(
                int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
            )
            public = numbers.public_key()  # ValueError when the point is not on the curve
        if not private:
            return JWKParts(kid, alg, None, public)
        d = _jwk_bytes(jwk, "d", COORD_BYTES)
        secret_key: PrivateKey
        if alg == "EdDSA":
            secret_key = Ed25519PrivateKey.from_private_bytes(d)
        else:
            secret_key = ec.derive_private_key(int.from_bytes(d, "big"), ec.SECP256R1())
    except ValueError:
        raise ConfigurationError(f"JWK {kid}: not a valid {alg} key") from None
    return JWKParts(kid, alg, secret_key, public)
