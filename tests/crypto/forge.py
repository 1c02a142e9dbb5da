"""A token forge for attack tests: compact JWS from raw header and payload bytes.

It never goes through a JWT library, so it can build every malformed thing an attacker can.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable, Mapping
from typing import Any

from authstate.crypto.keys import KeyRing, SigningKey, generate_key

ISSUER = "https://auth.example"
AUDIENCE = "app"
NOW = 1_800_000_000
TTL = 900


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def claims(**changes: object) -> dict[str, object]:
    """Valid access-token claims at ``NOW``; ``changes`` override, a value of ``...`` drops."""
    base: dict[str, object] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "mallory",
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + TTL,
        "jti": "AAAAAAAAAAAAAAAAAAAAAA",
        "roles": ["user"],
        "gen": 0,
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not ...}


def header(key: SigningKey, **changes: object) -> dict[str, object]:
    base: dict[str, object] = {"alg": key.alg, "typ": "at+jwt", "kid": key.kid}
    base.update(changes)
    return {name: value for name, value in base.items() if value is not ...}


def forge(
    head: Mapping[str, object] | bytes,
    body: Mapping[str, object] | bytes,
    signer: SigningKey | None,
    *,
    signature: bytes | None = None,
) -> str:
    """``b64(head).b64(body).b64(sig)``; dicts are JSON-encoded, bytes taken as they are.

    The signature is ``signer``'s over the exact signing input unless ``signature`` is given.
    """
    head_bytes = head if isinstance(head, bytes) else raw_json(head)
    body_bytes = body if isinstance(body, bytes) else raw_json(body)
    signing_input = f"{b64(head_bytes)}.{b64(body_bytes)}"
    if signature is None:
        if signer is None:
            raise ValueError("give a signer or a signature")
        signature = signer.sign(signing_input.encode())
    return f"{signing_input}.{b64(signature)}"


def ring_for(alg: str) -> KeyRing:
    return KeyRing([generate_key(alg, now=NOW - 60)])  # type: ignore[arg-type]


def nested_json(depth: int, inner: bytes = b'"\\u0041"', *, kind: str = "array") -> bytes:
    """An object whose member ``a`` holds ``inner`` under ``depth - 1`` more levels of
    arrays, objects or both alternating: ``depth`` levels in all."""
    objects = [kind == "object" or (kind == "mixed" and level % 2 == 1) for level in range(depth)]
    opening = b"".join(b'{"a":' if obj else b"[" for obj in objects[1:])
    closing = b"".join(b"}" if obj else b"]" for obj in reversed(objects[1:]))
    return b'{"a":' + opening + inner + closing + b"}"


def in_a_deep_stack(call: Callable[[], Any], spare_frames: int = 60) -> Any:
    """``call()`` with only ``spare_frames`` frames left before the recursion limit, as
    deep inside a server's middleware stack or a caller's own recursion."""

    def descend(remaining: int) -> Any:
        return call() if remaining <= 0 else descend(remaining - 1)

    here = 0
    frame = sys._getframe()
    while frame is not None:
        here, frame = here + 1, frame.f_back
    return descend(sys.getrecursionlimit() - here - spare_frames)
