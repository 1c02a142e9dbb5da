"""Random identifiers, the base64url text they travel as, and the hash a store keys them by.

Secrets (session IDs, refresh tokens) are 256 bits; public ids (handles, ``jti``) are 128.
A store only ever sees ``hash_secret(secret)``, so a leaked store does not leak live cookies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets

from authstate.errors import InvalidToken, NotFound

SECRET_BYTES = 32  # 256 bits -> 43 base64url characters
PUBLIC_ID_BYTES = 16  # 128 bits -> 22 base64url characters

_B64URL_RE = re.compile(r"[A-Za-z0-9_-]*")
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{43}")
_HANDLE_RE = re.compile(r"[A-Za-z0-9_-]{22}")

# The last character of an unpadded segment carries only 2 (length % 4 == 2) or 4
# (length % 4 == 3) significant bits; the other bits must be zero so that every byte
# string has exactly one spelling (RFC 4648 §3.5).
_CANONICAL_LAST = {
    2: frozenset("AQgw"),
    3: frozenset("AEIMQUYcgkosw048"),
}
_PADDING = ("", "", "==", "=")
_TO_STD = bytes.maketrans(b"-_", b"+/")  # base64url -> the alphabet binascii decodes


def b64url_encode(data: bytes) -> str:
    """Base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict inverse of ``b64url_encode``.

    Refuses padding, whitespace, any character outside ``A-Z a-z 0-9 - _``, impossible
    lengths and non-zero unused trailing bits. Raises ``ValueError``.
    """
    if _B64URL_RE.fullmatch(text) is None:
        raise ValueError("not base64url")
    return b64url_decode_alphabet_checked(text)


def b64url_decode_alphabet_checked(text: str) -> bytes:
    """``b64url_decode`` for text already known to hold only ``A-Z a-z 0-9 - _``.

    The token front layer checks the alphabet of a whole token with one regex and then
    decodes its segments here. Raises ``ValueError`` for an impossible length or
    non-zero unused trailing bits.
    """
    remainder = len(text) % 4
    if remainder == 1:
        raise ValueError("impossible base64url length")
    if remainder and text[-1] not in _CANONICAL_LAST[remainder]:
        raise ValueError("non-canonical base64url (unused bits set)")
    try:
        # Safe: the alphabet is checked (a2b_base64 alone would skip junk characters).
        return binascii.a2b_base64((text + _PADDING[remainder]).encode("ascii").translate(_TO_STD))
    except binascii.Error as exc:  # pragma: no cover - excluded by the checks above
        raise ValueError("not base64url") from exc


def new_secret_id() -> str:
    """A fresh 256-bit secret (session ID, refresh token): 43 base64url characters."""
    return b64url_encode(secrets.token_bytes(SECRET_BYTES))


def new_handle() -> str:
    """A fresh public 128-bit id for a session or refresh family: 22 base64url characters."""
    return b64url_encode(secrets.token_bytes(PUBLIC_ID_BYTES))


def new_jti() -> str:
    """A fresh 128-bit JWT id: 22 base64url characters."""
    return b64url_encode(secrets.token_bytes(PUBLIC_ID_BYTES))


def hash_secret(secret: str) -> str:
    """The store key of a secret: lowercase hex SHA-256 of its UTF-8 bytes (64 characters)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def check_secret_format(value: str) -> None:
    """Raise ``InvalidToken`` unless ``value`` looks like ``new_secret_id()`` output.

    Cheap and done before any hashing or store access, so junk never reaches the store.
    """
    if not isinstance(value, str) or _SECRET_RE.fullmatch(value) is None:
        raise InvalidToken(reason="malformed secret id")


def check_handle_format(value: str) -> None:
    """Raise ``NotFound`` unless ``value`` looks like ``new_handle()`` output."""
    if not isinstance(value, str) or _HANDLE_RE.fullmatch(value) is None:
        raise NotFound("no such session", reason="malformed handle")
