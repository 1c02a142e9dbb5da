"""Signing keys with one pinned algorithm each, and the ring that holds them.

A key is a typed object, never "a string that might be a PEM or a secret": the algorithm a
token is checked with comes from the key found by ``kid``, never from the token (RFC 8725
§3.1). A ring holds either HMAC keys or asymmetric keys, never both, so an HS256 token can
never be checked against bytes of a public key (algorithm confusion).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.hashes import SHA256

from authstate.crypto.algorithms import (
    COORD_BYTES,
    KID_PATTERN,
    MIN_HMAC_KEY_BYTES,
    SUPPORTED_ALGORITHMS,
    Algorithm,
    PrivateKey,
    PublicKey,
    raw_public,
)
from authstate.crypto.ids import new_jti
from authstate.crypto.jwk import parse_jwk, public_jwk
from authstate.errors import ConfigurationError, InvalidToken

# Algorithm and SUPPORTED_ALGORITHMS are part of the key API: callers name them from here.
__all__ = [
    "SUPPORTED_ALGORITHMS",
    "Algorithm",
    "KeyRing",
    "SigningKey",
    "generate_key",
]

_P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_P256_HALF_N = _P256_N // 2
_ES256_SIG_BYTES = 64
_ED25519_SIG_BYTES = 64
_ECDSA_SHA256 = ec.ECDSA(SHA256())

SignatureCheck = Callable[[bytes, bytes], None]


@dataclass(frozen=True, eq=False)
class SigningKey:
    """One key, pinned to one algorithm.

    ``private_key`` is an ``Ed25519PrivateKey`` (EdDSA), a P-256 ``EllipticCurvePrivateKey``
    (ES256), the raw HMAC secret of at least 32 bytes (HS256), or None for a verify-only key
    from a JWKS. ``public_key`` is derived from the private key when not given (None for
    HS256). ``retire_after`` (Unix seconds) is when the key stops verifying; a key with one
    set no longer signs. Construction raises ``ConfigurationError`` for inconsistent parts.
    """

    kid: str
    alg: Algorithm
    created_at: float
    private_key: PrivateKey | None = field(default=None, repr=False)
    public_key: PublicKey | None = field(default=None, repr=False)
    retire_after: float | None = None
    # verify()'s check for this kind of key, chosen once (__post_init__).
    _verify: SignatureCheck = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.alg not in SUPPORTED_ALGORITHMS:
            raise ConfigurationError(f"unsupported signing algorithm {self.alg!r}")
        if not isinstance(self.kid, str) or KID_PATTERN.fullmatch(self.kid) is None:
            raise ConfigurationError("a key id must be 1-64 characters of A-Z a-z 0-9 - _")
        if self.alg == "HS256":
            self._check_hmac()
        else:
            self._check_asymmetric()
        # Decided once per key, not per token (isinstance on cryptography's abstract key
        # classes costs more than an HMAC): the check verify() runs.
        object.__setattr__(self, "_verify", _signature_check(self))

    def _check_hmac(self) -> None:
        if not isinstance(self.private_key, bytes) or self.public_key is not None:
            raise ConfigurationError(f"HS256 key {self.kid}: the key is a bytes secret only")
        if len(self.private_key) < MIN_HMAC_KEY_BYTES:
            raise ConfigurationError(
                f"HS256 key {self.kid}: the secret must be at least {MIN_HMAC_KEY_BYTES} bytes"
            )

    def _check_asymmetric(self) -> None:
        private, public = self.private_key, self.public_key
        if self.alg == "EdDSA":
            parts_ok = isinstance(private, Ed25519PrivateKey | None) and isinstance(
                public, Ed25519PublicKey | None
            )
        else:
            parts_ok = all(
                part is None
                or (
                    isinstance(part, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey)
                    and isinstance(part.curve, ec.SECP256R1)
                )
                for part in (private, public)
            )
        if not parts_ok:
            raise ConfigurationError(f"{self.alg} key {self.kid}: wrong key type or curve")
        if isinstance(private, bytes):  # pragma: no cover - excluded by parts_ok
            raise ConfigurationError(f"{self.alg} key {self.kid}: wrong key type")
        if private is None:
            if public is None:
                raise ConfigurationError(f"key {self.kid} has neither a private nor a public part")
            return
        derived = private.public_key()
        if public is not None and raw_public(public) != raw_public(derived):
            raise ConfigurationError(f"key {self.kid}: the public part does not match")
        object.__setattr__(self, "public_key", derived)

    # -- properties -----------------------------------------------------------------------
    @property
    def can_sign(self) -> bool:
        """Whether the private part is here (a key from a JWKS can only verify)."""
        return self.private_key is not None

    @property
    def is_symmetric(self) -> bool:
        return self.alg == "HS256"

    def verifies_at(self, now: float) -> bool:
        """Whether the key still verifies at ``now`` (Unix seconds)."""
        return self.retire_after is None or now <= self.retire_after

    # -- signing and verifying --------------------------------------------------------------
    def sign(self, signing_input: bytes) -> bytes:
        """The JWS signature of ``signing_input``: 64-byte R‖S (ES256, always low-S),
        64 bytes (Ed25519) or 32 bytes (HMAC-SHA256).

        Raises ``ConfigurationError`` for a verify-only key.
        """
        private = self.private_key
        if private is None:
            raise ConfigurationError(f"key {self.kid} is verify-only and cannot sign")
        if isinstance(private, bytes):
            return hmac.digest(private, signing_input, "sha256")
        if isinstance(private, Ed25519PrivateKey):
            return private.sign(signing_input)
        r, s = decode_dss_signature(private.sign(signing_input, _ECDSA_SHA256))
        if s > _P256_HALF_N:
            s = _P256_N - s  # our verifier refuses high-S, so we never produce it
        return r.to_bytes(COORD_BYTES, "big") + s.to_bytes(COORD_BYTES, "big")

    def verify(self, signing_input: bytes, signature: bytes) -> None:
        """Raise ``InvalidToken`` unless ``signature`` is this key's signature of the input.

        HMAC tags are compared in constant time. ES256 accepts only the 64-byte R‖S form
        with 1 <= r < n and 1 <= s <= n/2: a DER signature, out-of-range values and the
        high-S twin of a valid signature are all refused, so nobody can turn a signature
        they have seen into a second valid spelling of the same token.
        """
        self._verify(signing_input, signature)

    # -- publication and storage ------------------------------------------------------------
    def public_jwk(self) -> dict[str, str]:
        """The public JWK (``kty``, ``crv``, ``x`` [, ``y``], ``kid``, ``alg``, ``use``).

        Raises ``ConfigurationError`` for HS256: a symmetric key is never published.
        """
        public = self.public_key
        if public is None:
            raise ConfigurationError(f"HS256 key {self.kid} is symmetric and never published")
        return public_jwk(self.kid, self.alg, public)

    def private_bytes(self) -> bytes:
        """The private part for sealed storage: PKCS#8 DER, or the raw HMAC secret.

        Raises ``ConfigurationError`` for a verify-only key.
        """
        private = self.private_key
        if private is None:
            raise ConfigurationError(f"key {self.kid} is verify-only: no private part")
        if isinstance(private, bytes):
            return private
        return private.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @classmethod
    def from_private_bytes(
        cls,
        kid: str,
        alg: Algorithm,
        data: bytes,
        created_at: float,
        retire_after: float | None = None,
    ) -> SigningKey:
        """Rebuild a key from ``private_bytes()`` output; ``ConfigurationError`` if unusable."""
        if alg not in SUPPORTED_ALGORITHMS:
            raise ConfigurationError(f"stored key {kid!r}: unsupported algorithm {alg!r}")
        private: PrivateKey
        if alg == "HS256":
            private = bytes(data)
        else:
            try:
                loaded = serialization.load_der_private_key(data, password=None)
            except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
                raise ConfigurationError(f"stored key {kid!r} is not a PKCS#8 key") from exc
            if not isinstance(loaded, Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
                raise ConfigurationError(f"stored key {kid!r} is of an unsupported type")
            private = loaded
        return cls(kid, alg, created_at, private, None, retire_after)

    @classmethod
    def from_public_jwk(cls, jwk: Mapping[str, object]) -> SigningKey:
        """A verify-only key from one JWKS entry (EdDSA/Ed25519 or ES256/P-256).

        ``alg`` and ``kid`` are required, ``use`` must be ``sig`` and ``key_ops`` must allow
        ``verify`` when present. Raises ``ConfigurationError`` for private members, ``oct``
        keys (a symmetric secret is never published), other types and curves, or a point that
        is not on the curve.
        """
        kid, alg, _, public = parse_jwk(jwk, private=False)
        return cls(kid, alg, 0.0, public_key=public)

    @classmethod
    def from_private_jwk(cls, jwk: Mapping[str, object]) -> SigningKey:
        """A signing key from a private JWK (``d`` for OKP/EC, ``k`` for ``oct``/HS256).

        Same checks as ``from_public_jwk``; an HS256 secret must be at least 32 bytes.
        Raises ``ConfigurationError``.
        """
        kid, alg, private, public = parse_jwk(jwk, private=True)
        return cls(kid, alg, 0.0, private_key=private, public_key=public)


# Spells the header segment a key writes on its tokens: (base64url text, the header).
HeaderWriter = Callable[[SigningKey], tuple[str, dict[str, str]]]


def _signature_check(key: SigningKey) -> SignatureCheck:
    """``key.verify``'s check, for the kind of key it is (see ``SigningKey.verify``)."""
    secret, public = key.private_key, key.public_key
    if isinstance(secret, bytes):
        # The keyed state once per key; each check copies it (cheaper than keying anew)
        # and compares in constant time (HMAC.verify).
        keyed = crypto_hmac.HMAC(secret, SHA256())

        def verify_hs256(signing_input: bytes, signature: bytes) -> None:
            mac = keyed.copy()
            mac.update(signing_input)
            try:
                mac.verify(signature)
            except InvalidSignature:
                raise InvalidToken(reason="bad HS256 signature") from None

        return verify_hs256
    if isinstance(public, Ed25519PublicKey):
        verify_ed25519 = public.verify

        def verify_eddsa(signing_input: bytes, signature: bytes) -> None:
            if len(signature) != _ED25519_SIG_BYTES:
                raise InvalidToken(reason="EdDSA signature has the wrong length")
            try:
                verify_ed25519(signature, signing_input)
            except InvalidSignature:
                raise InvalidToken(reason="bad EdDSA signature") from None

        return verify_eddsa
    if isinstance(public, ec.EllipticCurvePublicKey):
        verify_ecdsa = public.verify

        def verify_es256(signing_input: bytes, signature: bytes) -> None:
            if len(signature) != _ES256_SIG_BYTES:
                raise InvalidToken(reason="ES256 signature is not 64-byte R||S")
            r = int.from_bytes(signature[:COORD_BYTES], "big")
            s = int.from_bytes(signature[COORD_BYTES:], "big")
            if not (0 < r < _P256_N and 0 < s < _P256_N):
                raise InvalidToken(reason="ES256 signature value out of range")
            if s > _P256_HALF_N:
                raise InvalidToken(reason="ES256 signature is high-S (malleated)")
            try:
                verify_ecdsa(encode_dss_signature(r, s), signing_input, _ECDSA_SHA256)
            except InvalidSignature:
                raise InvalidToken(reason="bad ES256 signature") from None

        return verify_es256

    def no_public_part(signing_input: bytes, signature: bytes) -> None:  # pragma: no cover
        raise InvalidToken(reason="key has no public part")

    return no_public_part


def generate_key(alg: Algorithm, *, now: float) -> SigningKey:
    """A fresh key for ``alg`` with a random 128-bit kid; ``created_at`` = ``now``."""
    private: PrivateKey
    if alg == "EdDSA":
        private = Ed25519PrivateKey.generate()
    elif alg == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    elif alg == "HS256":
        private = secrets.token_bytes(MIN_HMAC_KEY_BYTES)
    else:
        raise ConfigurationError(f"unsupported signing algorithm {alg!r}")
    return SigningKey(new_jti(), alg, now, private_key=private)


class KeyRing:
    """The keys a node signs and verifies with, looked up by ``kid`` only.

    Raises ``ConfigurationError`` at construction for duplicate kids, a mix of HMAC and
    asymmetric keys, or an empty ring unless ``verify_only`` (a verifier may start empty and
    learn keys later). ``signing_key()`` raises when no active key has a private part.
    """

    __slots__ = ("_by_kid", "_headers", "_keys", "_signing")

    def __init__(self, keys: Iterable[SigningKey], *, verify_only: bool = False) -> None:
        self._keys = tuple(keys)
        self._by_kid: dict[str, SigningKey] = {}
        self._headers: dict[HeaderWriter, dict[str, tuple[dict[str, str], SigningKey]]] = {}
        for key in self._keys:
            if key.kid in self._by_kid:
                raise ConfigurationError(f"duplicate key id {key.kid!r} in the key ring")
            self._by_kid[key.kid] = key
        if len({key.is_symmetric for key in self._keys}) > 1:
            raise ConfigurationError(
                "a key ring must not mix HS256 and asymmetric keys (algorithm confusion)"
            )
        signers = [k for k in self._keys if k.can_sign and k.retire_after is None]
        # Newest wins; on equal times the later one in the sequence.
        self._signing = max(reversed(signers), key=lambda k: k.created_at, default=None)
        if not self._keys and not verify_only:
            raise ConfigurationError("the key ring is empty")

    def __repr__(self) -> str:
        return f"KeyRing(kids={[k.kid for k in self._keys]!r})"

    @property
    def keys(self) -> tuple[SigningKey, ...]:
        """Every key, in the order given."""
        return self._keys

    def signing_key(self) -> SigningKey:
        """The newest active key with a private part; ``ConfigurationError`` if none."""
        if self._signing is None:
            raise ConfigurationError("no active key in this ring can sign (verify-only ring?)")
        return self._signing

    def verification_key(self, kid: str, *, now: float) -> SigningKey:
        """The key named ``kid`` if it still verifies at ``now`` (Unix seconds).

        Raises ``InvalidToken`` for a malformed or unknown kid and for a key past its
        ``retire_after``. The kid is only ever a dictionary key: never a path or a query.
        """
        if not isinstance(kid, str) or KID_PATTERN.fullmatch(kid) is None:
            raise InvalidToken(reason="malformed kid")
        key = self._by_kid.get(kid)
        if key is None:
            raise InvalidToken(reason="unknown kid")
        if not key.verifies_at(now):
            raise InvalidToken(reason="key retired")
        return key

    def header_table(self, write: HeaderWriter) -> Mapping[str, tuple[dict[str, str], SigningKey]]:
        """Header segment text -> (the header it holds, the key), for the exact header
        ``write(key)`` spells for each key of the ring: computed once per ring and writer.

        A token whose header segment is one of these texts needs no parsing: that text
        decodes to exactly that header (our own tokens' headers, which a node sees on every
        first sight of a token). Any other spelling is parsed and checked in full. The
        headers are shared: callers must not change them. Retirement is the caller's to
        check (``SigningKey.verifies_at``), as it is after ``verification_key``.
        """
        table = self._headers.get(write)
        if table is None:
            table = {}
            for key in self._keys:
                text, header = write(key)
                table[text] = (header, key)
            self._headers[write] = table
        return table

    def retire_after(self, kid: str) -> float | None:
        """When the key named ``kid`` stops verifying (None: not retiring, or not in the ring).

        For a key that just verified a token: what the token cache needs to know of it."""
        key = self._by_kid.get(kid)
        return None if key is None else key.retire_after

    def jwks(self, *, now: float) -> dict[str, list[dict[str, str]]]:
        """The JWKS document: public keys still verifying at ``now``; none for an HS256 ring."""
        return {
            "keys": [
                key.public_jwk()
                for key in self._keys
                if not key.is_symmetric and key.verifies_at(now)
            ]
        }
