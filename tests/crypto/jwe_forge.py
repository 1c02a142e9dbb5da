"""A JWE forge for attack tests: compact JWE (``dir``, AES-GCM) from raw header and claims
bytes, encrypted with pyca/cryptography directly, never through authstate or a JOSE library,
so it can build every malformed thing an attacker holding the content key could."""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from authstate.crypto.jwe import content_key
from authstate.crypto.keys import SigningKey
from tests.crypto.forge import b64, raw_json


def jwe_header(key: SigningKey, **changes: object) -> dict[str, object]:
    """Our header for ``key``; ``changes`` override, a value of ``...`` drops."""
    base: dict[str, object] = {"alg": "dir", "enc": "A256GCM", "kid": key.kid, "typ": "at+jwt"}
    base.update(changes)
    return {name: value for name, value in base.items() if value is not ...}


def forge_jwe(
    head: Mapping[str, object] | bytes,
    body: Mapping[str, object] | bytes,
    key: SigningKey | bytes,
    *,
    iv: bytes | None = None,
    encrypted_key: bytes = b"",
) -> str:
    """``b64(head).b64(encrypted_key).b64(iv).b64(ciphertext).b64(tag)``, the header segment
    as the AAD; ``key`` is a ring key (its content key is used) or raw AES key bytes."""
    head_bytes = head if isinstance(head, bytes) else raw_json(head)
    body_bytes = body if isinstance(body, bytes) else raw_json(body)
    secret = key if isinstance(key, bytes) else content_key(key)
    iv = secrets.token_bytes(12) if iv is None else iv
    header_b64 = b64(head_bytes)
    sealed = AESGCM(secret).encrypt(iv, body_bytes, header_b64.encode())
    parts = (encrypted_key, iv, sealed[:-16], sealed[-16:])
    return ".".join([header_b64, *(b64(part) for part in parts)])
