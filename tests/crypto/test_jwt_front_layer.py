"""The strict front layer: every malformed token is refused before it can matter.

Most attack tokens here carry a correct signature by the real key (grey-box), so the only
thing that can refuse them is the rule under test. Each test first shows the forge makes
an accepted token from the same parts.
"""

from __future__ import annotations

import base64
import json

import pytest

import authstate.crypto._json as strict_json
import authstate.crypto.compact as compact_module
import authstate.crypto.jwt as jwt_module
from authstate.crypto.jwt import (
    MAX_HEADER_CHARS,
    MAX_TOKEN_BYTES,
    parse_compact,
    verify_access_token,
)
from authstate.crypto.keys import KeyRing, SigningKey, generate_key
from authstate.errors import InvalidToken
from tests.crypto.forge import (
    AUDIENCE,
    ISSUER,
    NOW,
    b64,
    claims,
    forge,
    header,
    in_a_deep_stack,
)


def verify(token: str | bytes, ring: KeyRing) -> object:
    return verify_access_token(token, ring, issuer=ISSUER, audience=AUDIENCE, now=NOW)  # type: ignore[arg-type]


def refusal(token: str | bytes, ring: KeyRing) -> str:
    """The log reason of the refusal (fails the test if the token is accepted)."""
    with pytest.raises(InvalidToken) as caught:
        verify(token, ring)
    return caught.value.reason


def valid_token(key: SigningKey, **claim_changes: object) -> str:
    return forge(header(key), claims(**claim_changes), key)


def test_the_forge_builds_tokens_the_verifier_accepts(ring: KeyRing, key: SigningKey) -> None:
    verify(valid_token(key), ring)
    verify(valid_token(key).encode(), ring)  # bytes are fine too


# -- algorithm "none" -----------------------------------------------------------------------------
@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE", "none ", "", "eddsa", "EDDSA"])
@pytest.mark.parametrize("keep_signature", [False, True])
def test_alg_none_or_a_case_variant_is_refused_in_every_spelling(
    ed_ring: KeyRing, alg: str, keep_signature: bool
) -> None:
    key = ed_ring.signing_key()
    original = valid_token(key).rsplit(".", 1)[1]
    head, body = header(key, alg=alg), claims(sub="alice")
    token = forge(head, body, None, signature=b"")
    if keep_signature:
        token += original
    reason = refusal(token, ed_ring)
    assert reason == (
        "header alg is not a supported algorithm" if keep_signature else "empty segment in token"
    )


# -- header allowlist -----------------------------------------------------------------------------
ATTACKER = generate_key("ES256", now=NOW)

REFUSED_MEMBERS: dict[str, object] = {
    "jwk": ATTACKER.public_jwk(),
    "jku": "http://127.0.0.1:9/jwks.json",
    "x5u": "http://127.0.0.1:9/cert.pem",
    "x5c": ["MIIBszCCAVmgAwIBAgIUWZ"],
    "x5t": "c2hhMQ",
    "crit": ["exp"],
    "b64": False,
    "zip": "DEF",
    "cty": "JWT",
    "enc": "A256GCM",
}


@pytest.mark.parametrize("member", sorted(REFUSED_MEMBERS))
def test_a_header_member_that_could_steer_verification_is_refused_even_when_signed(
    ring: KeyRing, key: SigningKey, member: str
) -> None:
    token = forge(header(key, **{member: REFUSED_MEMBERS[member]}), claims(), key)
    assert refusal(token, ring) == f"header member {member} refused"


@pytest.mark.parametrize("extra", [{"foo": 1}, {"x-policy": 1}, {"kid2": "x"}, {"": ""}])
def test_any_other_header_member_is_refused(ring: KeyRing, key: SigningKey, extra: dict) -> None:  # type: ignore[type-arg]
    assert refusal(forge(header(key, **extra), claims(), key), ring) == (
        "header has a member outside alg, typ, kid"
    )


def test_an_embedded_attacker_jwk_with_the_servers_kid_is_refused(es_ring: KeyRing) -> None:
    server = es_ring.signing_key()
    token = forge(header(server, jwk=ATTACKER.public_jwk()), claims(sub="alice"), ATTACKER)
    assert refusal(token, es_ring) == "header member jwk refused"
    # Without the jwk member, the attacker's signature simply does not verify.
    assert refusal(forge(header(server), claims(sub="alice"), ATTACKER), es_ring) == (
        "bad ES256 signature"
    )


@pytest.mark.parametrize("missing", ["alg", "typ", "kid"])
def test_a_header_without_alg_typ_or_kid_is_refused(
    ring: KeyRing, key: SigningKey, missing: str
) -> None:
    token = forge(header(key, **{missing: ...}), claims(), key)
    assert refusal(token, ring) == f"header lacks {missing}"


@pytest.mark.parametrize(
    "change",
    [
        {"kid": 123},
        {"kid": None},
        {"kid": []},
        {"kid": {}},
        {"kid": True},
        {"alg": None},
        {"alg": ["EdDSA"]},
        {"typ": 1},
    ],
)
def test_header_members_that_are_not_strings_are_refused(
    ring: KeyRing,
    key: SigningKey,
    change: dict,  # type: ignore[type-arg]
) -> None:
    token = forge(header(key, **change), claims(), key)
    assert refusal(token, ring) == "header alg, typ and kid must be strings"


@pytest.mark.parametrize("head", [b"[]", b'"x"', b"1", b"null", b"true", b"{}"])
def test_a_header_that_is_not_a_full_object_is_refused(ring: KeyRing, head: bytes) -> None:
    key = ring.signing_key()
    assert refusal(forge(head, claims(), key), ring).startswith("header")


@pytest.mark.parametrize("body", [b"[1,2]", b'"str"', b"42", b"null", b"true", b"foo"])
def test_claims_that_are_not_an_object_are_refused(ring: KeyRing, body: bytes) -> None:
    key = ring.signing_key()
    assert refusal(forge(header(key), body, key), ring).startswith("claims:")


# -- segments and characters ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape",
    [
        "",
        ".",
        "..",
        "...",
        "{h}",
        "{h}.{p}",
        "{h}.{p}.",
        "{h}..{s}",
        ".{p}.{s}",
        "{h}.{p}.{s}.",
        "{h}.{p}.{s}.{s}",
        "{h}.{p}.{s}.{p}.{s}",  # the shape of a compact JWE
        ".{h}.{p}.{s}",
        "{h}.{p}.{s}..",
    ],
)
def test_anything_but_three_non_empty_segments_is_refused(ring: KeyRing, shape: str) -> None:
    h, p, s = valid_token(ring.signing_key()).split(".")
    reason = refusal(shape.format(h=h, p=p, s=s), ring)
    assert "segment" in reason


@pytest.mark.parametrize(
    "junk", ["=", "==", " ", "\t", "\n", "\r\n", "+", "/", "?", "#", "!", "é", "%2E", "\x00"]
)
@pytest.mark.parametrize("segment", [0, 1, 2])
def test_a_character_outside_base64url_in_any_segment_is_refused(
    ring: KeyRing, junk: str, segment: int
) -> None:
    parts = valid_token(ring.signing_key()).split(".")
    parts[segment] += junk
    assert refusal(".".join(parts), ring).startswith("bad base64url")


@pytest.mark.parametrize("wrap", ['"{}"', " {}", "{} ", "{}\n", "Bearer {}"])
def test_a_quoted_or_padded_token_is_refused(ring: KeyRing, wrap: str) -> None:
    refusal(wrap.format(valid_token(ring.signing_key())), ring)


def test_a_token_with_non_ascii_bytes_is_refused(ring: KeyRing) -> None:
    assert refusal(valid_token(ring.signing_key()).encode() + b"\xff", ring) == (
        "token is not ASCII"
    )


@pytest.mark.parametrize("value", [None, 123, bytearray(b"a.b.c"), ["a", "b", "c"]])
def test_a_token_that_is_not_text_is_refused(ring: KeyRing, value: object) -> None:
    assert refusal(value, ring) == "token is not text"  # type: ignore[arg-type]


def _twin(segment: str) -> str:
    """Another spelling of ``segment`` that lenient decoders read as the same bytes."""
    last = segment[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    unused = {2: 0b1111, 3: 0b11}[len(segment) % 4]
    twin = segment[:-1] + alphabet[alphabet.index(last) | unused]
    assert twin != segment
    lenient = base64.urlsafe_b64decode
    assert lenient(twin + "==") == lenient(segment + "==")
    return twin


def test_a_signature_spelled_with_non_zero_unused_bits_is_refused(ring: KeyRing) -> None:
    h, p, s = valid_token(ring.signing_key()).split(".")
    assert len(s) % 4 in (2, 3)  # 86 characters for 64 bytes, 43 for 32
    assert "non-canonical" in refusal(f"{h}.{p}.{_twin(s)}", ring)


def test_claims_spelled_with_non_zero_unused_bits_are_refused(ring: KeyRing) -> None:
    key = ring.signing_key()
    h_b64 = b64(json.dumps(header(key)).encode())
    # Claims whose segment length leaves unused bits in its last character.
    p_b64 = next(
        text for pad in range(4) if len(text := b64(json.dumps(claims(pad="x" * pad)).encode())) % 4
    )
    canonical = f"{h_b64}.{p_b64}"
    verify(f"{canonical}.{b64(key.sign(canonical.encode()))}", ring)
    # The twin spelling is signed itself, so only the spelling can be wrong.
    twin = f"{h_b64}.{_twin(p_b64)}"
    assert "non-canonical" in refusal(f"{twin}.{b64(key.sign(twin.encode()))}", ring)


# -- encodings of the JSON ------------------------------------------------------------------------
ENCODINGS = ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-8-sig"]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_header_not_in_plain_utf8_is_refused_even_when_signed(
    ring: KeyRing, encoding: str
) -> None:
    key = ring.signing_key()
    head = json.dumps(header(key)).encode(encoding)
    assert refusal(forge(head, claims(), key), ring).startswith("header:")


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_claims_not_in_plain_utf8_are_refused_even_when_signed(
    ring: KeyRing, encoding: str
) -> None:
    key = ring.signing_key()
    body = json.dumps(claims()).encode(encoding)
    assert refusal(forge(header(key), body, key), ring).startswith("claims:")


@pytest.mark.parametrize(
    "sub", [b'"\xc0\xafroot"', b'"\xed\xa0\x80"', b'"\\ud800"', b'"a\\udc00"', b'"\xff"']
)
def test_claims_with_invalid_utf8_or_lone_surrogates_are_refused(ring: KeyRing, sub: bytes) -> None:
    key = ring.signing_key()
    body = b'{"iss":"%s","aud":"%s","sub":%s,"iat":%d,"nbf":%d,"exp":%d,"jti":"j"}' % (
        ISSUER.encode(),
        AUDIENCE.encode(),
        sub,
        NOW,
        NOW,
        NOW + 60,
    )
    assert refusal(forge(header(key), body, key), ring).startswith("claims:")


# -- duplicate names and odd numbers --------------------------------------------------------------
def _header_bytes(key: SigningKey, middle: str) -> bytes:
    return ('{"typ":"at+jwt","kid":"' + key.kid + '",' + middle + "}").encode()


@pytest.mark.parametrize(
    "middle",
    [
        '"alg":"none","alg":"{alg}"',
        '"alg":"{alg}","alg":"none"',
        '"alg":"{alg}","alg":"{alg}"',
        '"alg":"{alg}","typ":"refresh+jwt"',
        '"alg":"{alg}","kid":"other"',
    ],
)
def test_duplicate_header_members_are_refused_whatever_their_values(
    ring: KeyRing, middle: str
) -> None:
    key = ring.signing_key()
    head = _header_bytes(key, middle.format(alg=key.alg))
    assert refusal(forge(head, claims(), key), ring) == "header: duplicate member name"


@pytest.mark.parametrize(
    "duplicate",
    ['"sub":"alice"', f'"exp":{NOW + 10**6}', '"aud":"other"', '"x":{"a":1,"a":2}'],
)
def test_duplicate_claims_are_refused_whatever_their_values(ring: KeyRing, duplicate: str) -> None:
    key = ring.signing_key()
    body = json.dumps(claims()).encode()[:-1] + b"," + duplicate.encode() + b"}"
    assert refusal(forge(header(key), body, key), ring) == "claims: duplicate member name"


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
@pytest.mark.parametrize("claim", ["exp", "x"])
def test_nan_and_infinity_are_refused_in_any_claim(ring: KeyRing, number: str, claim: str) -> None:
    key = ring.signing_key()
    body = json.dumps(claims(**{claim: 0})).encode()
    body = body.replace(f'"{claim}": 0'.encode(), f'"{claim}": {number}'.encode())
    assert number.encode() in body
    assert refusal(forge(header(key), body, key), ring).startswith("claims:")


def test_a_huge_integer_claim_is_refused(ring: KeyRing) -> None:
    key = ring.signing_key()
    token = valid_token(key, exp=10**2000)
    assert len(token) < MAX_TOKEN_BYTES
    assert "exp" in refusal(token, ring)


def test_deeply_nested_claims_are_refused_before_the_json_parser_and_never_crash(
    ring: KeyRing, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The depth rule runs before the parser: a 1400-deep body, signed or not, never
    reaches ``json`` (whose work, and recursion, grow with the depth)."""
    key = ring.signing_key()
    depth = 1400  # fills most of the size cap
    body = b'{"x":' + b"[" * depth + b"]" * depth + b"}"
    parsed: list[str] = []
    real_scan = strict_json._SCAN_ONCE
    monkeypatch.setattr(
        strict_json, "_SCAN_ONCE", lambda text, at: parsed.append(text) or real_scan(text, at)
    )
    for signature in (b"\x00" * 64, None):
        token = forge(header(key), body, key if signature is None else None, signature=signature)
        assert len(token) <= MAX_TOKEN_BYTES
        refusal(token, ring)
    assert not any("[[[" in text for text in parsed), "a deep body reached the JSON parser"


@pytest.mark.parametrize("depth", [33, 100, 300, 450, 600, 750, 900, 1000, 1200, 1390])
@pytest.mark.parametrize("escape", ["\\u0041", "\\ud800", "A"])
def test_deep_claims_are_refused_at_every_depth_with_or_without_an_escape(
    ring: KeyRing, depth: int, escape: str
) -> None:
    """Red team F1: claims ``{"a":`` + ``[``x600 + ``"\\u0041"`` + ``]``x600 + ``}`` with a
    zero signature raised RecursionError from the lone-surrogate walk (450-900 levels; 300
    and >= 1000 were refused). Every depth past MAX_DEPTH is now InvalidToken, signed or
    not, before any key is looked at."""
    key = ring.signing_key()
    body = b'{"a":' + b"[" * depth + f'"{escape}"'.encode() + b"]" * depth + b"}"
    for token in (
        forge(header(key), body, None, signature=b"\x00" * 64),
        forge(header(key), body, key),
    ):
        assert len(token) <= MAX_TOKEN_BYTES
        assert refusal(token, ring) == "claims: nested too deeply"
        with pytest.raises(InvalidToken):
            parse_compact(token)


def test_a_deep_header_is_refused_as_invalid_token(ring: KeyRing) -> None:
    key = ring.signing_key()
    for depth in (33, 80, 150):
        head = (
            f'{{"alg":"{key.alg}","typ":"at+jwt","kid":"{key.kid}","x":'.encode()
            + b"[" * depth
            + b'"\\u0041"'
            + b"]" * depth
            + b"}"
        )
        token = forge(head, claims(), key)
        assert refusal(token, ring) == "header: nested too deeply"


def test_the_verdict_on_nesting_does_not_depend_on_the_callers_stack(ring: KeyRing) -> None:
    """The same tokens verified with only 80 frames to spare (a deep middleware stack):
    the valid one is accepted, the deep one is InvalidToken, never RecursionError."""
    key = ring.signing_key()
    good = valid_token(key, extra={"a": [[{"b": ["\u00e9"]}]]})
    body = b'{"a":' + b"[" * 300 + b'"\\u0041"' + b"]" * 300 + b"}"
    deep = forge(header(key), body, key)
    assert in_a_deep_stack(lambda: verify(good, ring), spare_frames=80) is not None
    with pytest.raises(InvalidToken):
        in_a_deep_stack(lambda: verify(deep, ring), spare_frames=80)


# -- sizes ----------------------------------------------------------------------------------------
def test_a_token_over_the_cookie_cap_is_refused_before_any_decoding(ring: KeyRing) -> None:
    key = ring.signing_key()
    token = valid_token(key, pad="x" * 4000)
    assert len(token) > MAX_TOKEN_BYTES
    assert refusal(token, ring) == "token too large"

    def no_decoding(segment: str) -> bytes:
        raise AssertionError("an oversized token reached base64 decoding")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(compact_module, "b64url_decode_alphabet_checked", no_decoding)
        for huge in ("." * 100_000, "A" * 1_000_000, valid_token(key) + "A" * 8000):
            assert refusal(huge, ring) == "token too large"


def test_the_largest_token_under_the_cap_is_still_accepted(ring: KeyRing) -> None:
    key = ring.signing_key()
    tokens = (valid_token(key, pad="x" * pad) for pad in range(2000, 3100))
    largest = max((t for t in tokens if len(t) <= MAX_TOKEN_BYTES), key=len)
    assert len(largest) >= MAX_TOKEN_BYTES - 2
    verify(largest, ring)


def test_an_oversized_header_is_refused(ring: KeyRing) -> None:
    key = ring.signing_key()
    token = forge(header(key, kid="k" * MAX_HEADER_CHARS), claims(), key)
    assert refusal(token, ring) == "header too large"


# -- the parsed result ----------------------------------------------------------------------------
def test_parse_compact_returns_the_exact_header_claims_and_signed_bytes(key: SigningKey) -> None:
    token = valid_token(key)
    parsed = parse_compact(token)
    assert parsed.header == {"alg": key.alg, "typ": "at+jwt", "kid": key.kid}
    assert parsed.claims == claims()
    assert parsed.signing_input == token.rsplit(".", 1)[0].encode()
    key.verify(parsed.signing_input, parsed.signature)


# -- the cache of checked headers -----------------------------------------------------------------
def test_a_refused_header_is_refused_again_and_never_remembered(
    ring: KeyRing, key: SigningKey
) -> None:
    """Only headers that passed every check are remembered; a refused one is parsed anew
    (and refused for the same reason) each time it comes back."""
    bad = forge(header(key, jku="https://attacker.example/jwks"), claims(), key)
    first = refusal(bad, ring)
    assert first == refusal(bad, ring) == "header member jku refused"
    assert bad.split(".")[0] not in compact_module._known_headers


def test_a_remembered_header_still_needs_its_key_and_a_valid_signature(
    ring: KeyRing, key: SigningKey
) -> None:
    token = valid_token(key)
    verify(token, ring)
    head, body, signature = token.split(".")
    assert head in ring.header_table(jwt_module._access_header)  # known without parsing
    other = forge(header(key), claims(sub="eve"), None, signature=b"\x00" * 64)
    assert refusal(f"{head}.{other.split('.')[1]}.{signature}", ring).count("signature") == 1
    assert refusal(f"{head}.{body}.{other.split('.')[2]}", ring).count("signature") == 1


def test_the_header_cache_is_bounded_by_distinct_headers(ring: KeyRing, key: SigningKey) -> None:
    """Headers an attacker varies (here: unknown kids, each passing the front layer) evict
    each other; the cache never grows past its bound."""
    for n in range(3 * compact_module._HEADER_CACHE_ENTRIES):
        token = forge(header(key, kid=f"unknown-{n}"), claims(), key)
        assert refusal(token, ring) == "unknown kid"
        assert len(compact_module._known_headers) <= compact_module._HEADER_CACHE_ENTRIES
    verify(valid_token(key), ring)  # and the real header is accepted after the churn


def test_the_ring_knows_exactly_the_header_its_keys_write(ring: KeyRing, key: SigningKey) -> None:
    """The table of known headers holds the text encode() writes, and what it parses to."""
    table = ring.header_table(jwt_module._access_header)
    head = valid_token(key).split(".")[0]
    assert table[head] == (header(key), key)
    assert json.loads(base64.urlsafe_b64decode(head + "==")) == table[head][0]
    assert len(table) == len(ring.keys)


def test_another_spelling_of_a_known_header_is_parsed_in_full(
    ring: KeyRing, key: SigningKey
) -> None:
    """Members reordered, or spaced: not the known text, so the full front layer runs and
    decides (the same header is accepted; one with a member too many is not)."""
    reordered = {"kid": key.kid, "typ": "at+jwt", "alg": key.alg}
    token = forge(reordered, claims(), key)
    assert token.split(".")[0] not in ring.header_table(jwt_module._access_header)
    compact_module.forget_known_headers()
    verify(token, ring)
    spaced = json.dumps(header(key)).encode()
    verify(forge(spaced, claims(), key), ring)
    assert refusal(forge({**header(key), "jku": "https://x"}, claims(), key), ring) == (
        "header member jku refused"
    )


def test_a_known_header_of_a_retired_key_is_refused() -> None:
    from dataclasses import replace

    old = replace(generate_key("EdDSA", now=NOW - 100), retire_after=NOW - 1)
    ring = KeyRing([old, generate_key("EdDSA", now=NOW)])
    token = valid_token(old)
    assert token.split(".")[0] in ring.header_table(jwt_module._access_header)
    assert refusal(token, ring) == "key retired"
