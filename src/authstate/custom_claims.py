"""An application's custom claims: small JSON objects that travel with every credential.

``set_claims`` stores them for a user; they reach ``Principal.claims`` and, in the JWT
modes, the access token itself, so they are capped (``MAX_CLAIMS_BYTES`` of compact JSON)
and may not use a name authstate, JWT or OpenID Connect give a meaning to
(``RESERVED_CLAIM_NAMES``): a custom ``sub`` or ``exp`` must never reach a verifier.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from authstate.errors import BadRequest

# Compact JSON of the whole object: every access token carries it, and a token must fit in
# one cookie beside the roles.
MAX_CLAIMS_BYTES: Final = 1024
# Nesting is refused beyond this depth (the token parser allows more; claims need little).
MAX_CLAIMS_DEPTH: Final = 4

RESERVED_CLAIM_NAMES: Final = frozenset(
    {
        # RFC 7519 registered claims, and the JOSE header names (never confused with them)
        *("iss", "sub", "aud", "exp", "nbf", "iat", "jti", "typ", "cty", "alg", "kid"),
        # authstate's own: roles, session handle, generation, roles version, step-up
        *("roles", "sid", "gen", "rv", "auth_time", "amr", "acr"),
        "rem",  # remember-me (``"rem": false``: browser-session cookies)
        # OpenID Connect and OAuth names a verifier may interpret
        *("azp", "nonce", "scope", "client_id", "cnf", "at_hash", "c_hash", "sid_hash"),
        *("act", "may_act", "groups", "entitlements", "permissions", "email_verified"),
    }
)

EMPTY_CLAIMS: Final[Mapping[str, Any]] = MappingProxyType({})


def check_custom_claims(claims: Mapping[str, Any]) -> dict[str, Any]:
    """The claims as a plain JSON-shaped dict; ``BadRequest`` unless ``claims`` is an object
    with string keys, none reserved (``RESERVED_CLAIM_NAMES``, or starting with
    ``authstate``), whose values are JSON (strings, finite numbers, booleans, null, lists,
    objects; at most ``MAX_CLAIMS_DEPTH`` levels) and whose compact JSON is at most
    ``MAX_CLAIMS_BYTES`` bytes."""
    if not isinstance(claims, Mapping):
        raise BadRequest("claims must be a JSON object")
    for name in claims:
        if not isinstance(name, str) or not name:
            raise BadRequest("claim names must be non-empty strings")
        if name in RESERVED_CLAIM_NAMES or name.lower().startswith("authstate"):
            raise BadRequest(f"the claim name {name!r} is reserved")
    _check_json(claims, depth=1)
    text = json.dumps(dict(claims), separators=(",", ":"), allow_nan=False)
    if len(text.encode("utf-8", "surrogatepass")) > MAX_CLAIMS_BYTES:
        raise BadRequest(f"claims are at most {MAX_CLAIMS_BYTES} bytes of JSON")
    # The stored form: what a store and a token round-trip to (tuples become lists).
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def _check_json(value: Any, *, depth: int) -> None:
    if value is None or isinstance(value, (str, bool, int)):
        if isinstance(value, str):
            try:
                value.encode()
            except UnicodeEncodeError:
                raise BadRequest("claim strings must be valid Unicode") from None
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BadRequest("claim numbers must be finite")
        return
    if depth > MAX_CLAIMS_DEPTH:
        raise BadRequest(f"claims nest at most {MAX_CLAIMS_DEPTH} levels")
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_json(item, depth=depth + 1)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise BadRequest("claim object keys must be strings")
            _check_json(key, depth=depth)
            _check_json(item, depth=depth + 1)
        return
    raise BadRequest(f"a claim value of type {type(value).__name__} is not JSON")


def public_claims(extra: Mapping[str, Any]) -> Mapping[str, Any]:
    """The custom claims among a token's extra claims (reserved names left out), read-only."""
    if not extra or extra.keys() <= RESERVED_CLAIM_NAMES:  # none custom: the common case
        return EMPTY_CLAIMS
    return MappingProxyType({k: v for k, v in extra.items() if k not in RESERVED_CLAIM_NAMES})
