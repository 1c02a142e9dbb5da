"""The strict front layer every token goes through before any key is touched.

It refuses what JOSE libraries tend to accept: oversized input, anything but exactly three
compact segments, non-canonical base64url, non-UTF-8 or duplicate-member JSON, NaN/Infinity,
and every header member but ``alg``, ``typ`` and ``kid`` (so ``jwk``/``jku``/``x5u``/``x5c``/
``crit``/``b64``/``zip``/``cty`` can never steer verification). The signature is not
checked here: ``authstate.crypto.jwt.verify_access_token`` does that, then the claims.

Every refusal raises ``InvalidToken`` whose ``reason`` (for the log) names the rule that
failed and never echoes the token or a secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, NoReturn

from authstate.crypto._json import StrictJSONError, loads_object
from authstate.crypto.ids import b64url_decode_alphabet_checked
from authstate.crypto.keys import SUPPORTED_ALGORITHMS, SigningKey
from authstate.errors import InvalidToken

MAX_TOKEN_BYTES: Final = 4096  # what a browser keeps in one cookie
MAX_HEADER_CHARS: Final = 512  # encoded; ours is about 100
HEADER_MEMBERS: Final = frozenset({"alg", "typ", "kid"})

# Named in log reasons when present; any other unexpected member is reported generically
# so the log never carries attacker-chosen text.
_REFUSED_HEADER_MEMBERS: Final = frozenset(
    {"jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256", "crit", "zip", "b64", "cty", "enc", "epk"}
)


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


def forget_known_headers() -> None:
    """Empty the cache of checked headers, so the next token's header is parsed and checked
    in full (the benchmark's "cold" path pays for it; correctness never needs this)."""
    _known_headers.clear()


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
        decode_segment(header_b64),
        decode_segment(payload_b64),
        signing_input,
        decode_segment(signature_b64),
    )


def token_text(token: str | bytes) -> str:
    """A compact token (JWS or JWE) as text: a str, or ASCII bytes, within the size cap."""
    # a cookie or header is a str: one test, not two
    if type(token) is not str and not isinstance(token, str | bytes):
        raise InvalidToken(reason="token is not text")
    if len(token) > MAX_TOKEN_BYTES:  # before any other work
        raise InvalidToken(reason="token too large")
    if isinstance(token, bytes):
        try:
            return token.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidToken(reason="token is not ASCII") from None
    return token


def _segments(token: str | bytes) -> tuple[str, str, str]:
    """The three segments of a token of the right size, shape and alphabet."""
    token = token_text(token)
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


def decode_segment(segment: str) -> bytes:
    """A strict base64url segment of a compact token; ``InvalidToken`` otherwise."""
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
        parsed = loads_object(decode_segment(header_b64))
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


def parse_front(token: str | bytes) -> tuple[dict[str, str], dict[str, object], bytes, bytes]:
    """``parse_compact`` without the result object."""
    header, claims, signing_input, signature, _ = parse_front_known(token, _NO_KNOWN_HEADERS)
    return header, claims, signing_input, signature


_NO_KNOWN_HEADERS: Final[Mapping[str, tuple[dict[str, str], SigningKey]]] = {}


def parse_front_known(
    token: str | bytes, known: Mapping[str, tuple[dict[str, str], SigningKey]]
) -> tuple[dict[str, str], dict[str, object], bytes, bytes, SigningKey | None]:
    """``parse_front``, the per-request path: a header segment found in ``known``
    (``KeyRing.header_table``: the exact text a ring key writes) is taken as the header
    it holds, with its key; any other is parsed and checked in full (key None then)."""
    header_b64, payload_b64, signature_b64 = _segments(token)
    entry = known.get(header_b64)
    if entry is None:
        header, key = _header(header_b64), None
    else:
        header, key = entry
    # The signature is decoded before the claims are parsed, as split_compact orders it,
    # so a token bad in both places is refused with the same reason either way.
    try:
        # decode_segment's work, without a call per segment (the alphabet is checked).
        payload = b64url_decode_alphabet_checked(payload_b64)
        signature = b64url_decode_alphabet_checked(signature_b64)
    except ValueError as exc:
        raise InvalidToken(reason=f"bad base64url: {exc}") from None
    try:
        claims = loads_object(payload)
    except StrictJSONError as exc:
        raise InvalidToken(reason=f"claims: {exc}") from None
    return header, claims, f"{header_b64}.{payload_b64}".encode("ascii"), signature, key


def parse_compact(token: str | bytes) -> ParsedToken:
    """The strict front layer: ``split_compact``, then strict JSON for header and claims
    and the header allowlist (exactly ``alg``, ``typ``, ``kid``, all strings, ``alg``
    one of ours, compared case-sensitively). Raises ``InvalidToken``.

    The signature is not checked: use ``jwt.verify_access_token`` for anything you trust.
    """
    header, claims, signing_input, signature = parse_front(token)
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
