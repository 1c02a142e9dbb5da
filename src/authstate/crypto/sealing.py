"""Keys derived from the master secret, and sealing (authenticated encryption) with one of them.

Every purpose gets its own HKDF-derived key, so a key that leaks from one use (say the CSRF
HMAC key) says nothing about another (the key that seals private signing keys in the store).
"""

from __future__ import annotations

import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from authstate.errors import ConfigurationError

MIN_MASTER_SECRET_BYTES = 32
NONCE_BYTES = 12  # the 96-bit nonce AES-GCM is designed for
TAG_BYTES = 16


def derive_key(master_secret: bytes, purpose: str, length: int = 32) -> bytes:
    """A ``length``-byte key for ``purpose``: HKDF-SHA256 with ``info = b"authstate/" + purpose``.

    Raises ``ConfigurationError`` for a master secret shorter than 32 bytes and ``ValueError``
    for an empty purpose or an impossible length.
    """
    if len(master_secret) < MIN_MASTER_SECRET_BYTES:
        raise ConfigurationError(
            f"the master secret must be at least {MIN_MASTER_SECRET_BYTES} bytes"
        )
    if not purpose:
        raise ValueError("derive_key needs a purpose")
    hkdf = HKDF(algorithm=SHA256(), length=length, salt=None, info=b"authstate/" + purpose.encode())
    return hkdf.derive(master_secret)


class Sealer:
    """Seals small secrets for storage with AES-256-GCM under a key derived from the master.

    The output is ``nonce (12 bytes) || ciphertext || tag (16 bytes)``. ``aad`` binds the
    sealed bytes to their context (e.g. a key id), so they cannot be moved to another record.
    """

    __slots__ = ("_aead",)

    def __init__(self, master_secret: bytes) -> None:
        """Raises ``ConfigurationError`` for a master secret shorter than 32 bytes."""
        self._aead = AESGCM(derive_key(master_secret, "sealing"))

    def __repr__(self) -> str:
        return "Sealer(<secret hidden>)"

    def seal(self, plaintext: bytes, *, aad: bytes) -> bytes:
        """Encrypt and authenticate ``plaintext``; a fresh random nonce every call."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def unseal(self, sealed: bytes, *, aad: bytes) -> bytes:
        """The plaintext of ``seal(plaintext, aad=aad)``.

        Raises ``ConfigurationError`` when the bytes were sealed under another master secret,
        with another ``aad``, or were altered: at start that means a wrong ``AUTHSTATE_SECRET``.
        """
        if len(sealed) < NONCE_BYTES + TAG_BYTES:
            raise ConfigurationError("cannot unseal stored data: it is truncated")
        try:
            return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
        except InvalidTag:
            raise ConfigurationError(
                "cannot unseal stored data: wrong AUTHSTATE_SECRET? "
                "(every node sharing a store needs the same secret)"
            ) from None
