"""The signing algorithms authstate supports and the key types each one uses."""

from __future__ import annotations

import re
from typing import Final, Literal, TypeAlias, get_args

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

Algorithm: TypeAlias = Literal["EdDSA", "ES256", "HS256"]
SUPPORTED_ALGORITHMS: Final[frozenset[str]] = frozenset(get_args(Algorithm))

PrivateKey: TypeAlias = Ed25519PrivateKey | ec.EllipticCurvePrivateKey | bytes
PublicKey: TypeAlias = Ed25519PublicKey | ec.EllipticCurvePublicKey

MIN_HMAC_KEY_BYTES: Final = 32  # the SHA-256 output size (RFC 7518 §3.2)
KID_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
COORD_BYTES: Final = 32  # P-256 coordinates and scalars, Ed25519 keys


def raw_public(key: PublicKey) -> bytes:
    """The public key as bytes: raw Ed25519, or the uncompressed P-256 point."""
    if isinstance(key, Ed25519PublicKey):
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
