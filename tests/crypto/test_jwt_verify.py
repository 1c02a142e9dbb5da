"""Issuing and verifying access tokens: key choice, algorithm pinning, typ and claims."""

from __future__ import annotations

import hmac
import json
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from authstate.crypto.jwt import (
    MAX_SAFE_INT,
    AccessClaims,
    encode,
    issue_access_token,
    parse_compact,
    verify_access_token,
)
from authstate.crypto.keys import Algorithm, KeyRing, SigningKey, generate_key
from authstate.errors import ConfigurationError, InvalidToken
from tests.crypto.forge import AUDIENCE, ISSUER, NOW, TTL, b64, claims, forge, header, ring_for


def verify(token: str, ring: KeyRing, **options: object) -> AccessClaims:
    arguments: dict[str, object] = {"issuer": ISSUER, "audience": AUDIENCE, "now": NOW}
    arguments.update(options)
    return verify_access_token(token, ring, **arguments)  # type: ignore[arg-type]


def refusal(token: str, ring: KeyRing, **options: object) -> str:
    with pytest.raises(InvalidToken) as caught:
        verify(token, ring, **options)
    return caught.value.reason


def issue(key: SigningKey, **options: object) -> tuple[str, AccessClaims]:
    arguments: dict[str, object] = {
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "subject": "u1",
        "roles": ["staff"],
        "now": NOW + 0.75,
        "ttl_seconds": TTL,
    }
    arguments.update(options)
    return issue_access_token(key, **arguments)  # type: ignore[arg-type]


# -- issuing --------------------------------------------------------------------------------------
def test_an_issued_token_verifies_to_the_claims_it_was_issued_with(
    ring: KeyRing, key: SigningKey
) -> None:
    token, issued = issue(key, handle="handle", gen=3)
    assert verify(token, ring) == issued
    assert (issued.iat, issued.nbf, issued.exp) == (NOW, NOW, NOW + TTL)
    assert (issued.sub, issued.roles, issued.sid, issued.gen) == ("u1", ("staff",), "handle", 3)
    assert (issued.iss, issued.aud, issued.kid) == (ISSUER, AUDIENCE, key.kid)
    assert len(issued.jti) == 22
    assert len(token) < 600


def test_the_header_is_exactly_alg_typ_kid_in_compact_json(key: SigningKey) -> None:
    token, _ = issue(key)
    raw = parse_compact(token).signing_input.split(b".")[0]
    expected = f'{{"alg":"{key.alg}","typ":"at+jwt","kid":"{key.kid}"}}'
    assert b64(expected.encode()) == raw.decode()


def test_every_token_gets_its_own_jti_unless_one_is_given(key: SigningKey) -> None:
    assert len({issue(key)[1].jti for _ in range(100)}) == 100
    assert issue(key, jti="chosen")[1].jti == "chosen"


def test_a_token_without_sid_carries_no_sid_claim(ring: KeyRing, key: SigningKey) -> None:
    token, issued = issue(key)
    assert "sid" not in parse_compact(token).claims and issued.sid is None
    assert verify(token, ring).sid is None


@pytest.mark.parametrize(
    "bad",
    [
        {"subject": ""},
        {"ttl_seconds": 0},
        {"ttl_seconds": -5},
        {"ttl_seconds": 1.5},
        {"gen": -1},
        {"roles": "admin"},
        {"roles": [1]},
    ],
)
def test_issuing_a_token_the_verifier_would_refuse_is_an_error(
    key: SigningKey, bad: dict[str, object]
) -> None:
    with pytest.raises(ValueError):
        issue(key, **bad)


def test_claims_too_large_for_a_cookie_are_refused_at_issue(key: SigningKey) -> None:
    with pytest.raises(ValueError, match="cookie cap"):
        issue(key, roles=["r" * 100] * 40)


def test_a_verify_only_key_cannot_issue() -> None:
    public = SigningKey.from_public_jwk(generate_key("EdDSA", now=NOW).public_jwk())
    with pytest.raises(ConfigurationError):
        issue(public)


def test_extra_claims_come_back_read_only(ring: KeyRing, key: SigningKey) -> None:
    token = encode({**claims(), "tenant": "t1", "flags": [1, 2]}, key)
    verified = verify(token, ring)
    assert dict(verified.extra) == {"tenant": "t1", "flags": [1, 2]}
    with pytest.raises(TypeError):
        verified.extra["tenant"] = "t2"  # type: ignore[index]


# -- key and algorithm ----------------------------------------------------------------------------
@pytest.mark.parametrize("claimed", ["EdDSA", "ES256", "HS256"])
def test_the_header_alg_must_be_the_keys_own_algorithm(ring: KeyRing, claimed: str) -> None:
    key = ring.signing_key()
    token = forge(header(key, alg=claimed), claims(), key)  # genuinely signed by the key
    if claimed == key.alg:
        verify(token, ring)
    else:
        assert refusal(token, ring) == "header alg does not match the key's algorithm"


def _public_key_spellings(key: SigningKey) -> dict[str, bytes]:
    """Every way an attacker might spell the public key as an HMAC secret."""
    public = key.public_key
    assert isinstance(public, Ed25519PublicKey | ec.EllipticCurvePublicKey)
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    spellings = {
        "pem": pem,
        "pem without newline": pem.rstrip(b"\n"),
        "pem crlf": pem.replace(b"\n", b"\r\n"),
        "der": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "openssh": public.public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        ),
        "jwk": json.dumps(key.public_jwk()).encode(),
        "jwk compact": json.dumps(key.public_jwk(), separators=(",", ":")).encode(),
        "jwks": json.dumps({"keys": [key.public_jwk()]}).encode(),
        "x": key.public_jwk()["x"].encode(),
    }
    if isinstance(public, Ed25519PublicKey):
        spellings["raw"] = public.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    else:
        point = public.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        spellings |= {"point": point, "x||y": point[1:]}
    return spellings


@pytest.mark.parametrize("alg", ["EdDSA", "ES256"])
def test_an_hs256_token_keyed_with_the_public_key_is_refused(alg: str) -> None:
    # Algorithm confusion: the attacker knows the public key and claims HS256.
    ring = ring_for(alg)
    key = ring.signing_key()
    head, body = header(key, alg="HS256"), claims(sub="alice")
    signing_input = forge(head, body, None, signature=b"").rstrip(".").encode()
    for name, secret in _public_key_spellings(key).items():
        mac = hmac.digest(secret, signing_input, "sha256")
        token = forge(head, body, None, signature=mac)
        assert refusal(token, ring) == "header alg does not match the key's algorithm", name


def test_a_token_naming_another_key_of_the_ring_is_refused() -> None:
    first, second = generate_key("EdDSA", now=NOW), generate_key("EdDSA", now=NOW + 1)
    ring = KeyRing([first, second])
    token = forge(header(second), claims(), first)  # signed by first, names second
    assert refusal(token, ring) == "bad EdDSA signature"


def test_a_token_from_a_key_outside_the_ring_is_refused(ring: KeyRing) -> None:
    stranger = generate_key(ring.signing_key().alg, now=NOW)
    assert refusal(issue(stranger)[0], ring) == "unknown kid"


@pytest.mark.parametrize(
    "kid", ["../../../../../../dev/null", "/dev/null", "x' UNION SELECT 'AAAA'--", "*", "a" * 65]
)
def test_a_kid_that_is_a_path_or_a_query_finds_nothing(hs_ring: KeyRing, kid: str) -> None:
    weak = b"\x00" * 32  # what /dev/null or an injected row might have provided
    token = forge(
        {"alg": "HS256", "typ": "at+jwt", "kid": kid},
        claims(),
        None,
        signature=SigningKey("k", "HS256", 0, private_key=weak).sign(b"unused"),
    )
    assert refusal(token, hs_ring) == "malformed kid"


def test_a_retired_key_verifies_its_tokens_until_retire_after_only() -> None:
    old = replace(generate_key("EdDSA", now=NOW - 100), retire_after=NOW + 60)
    ring = KeyRing([old, generate_key("EdDSA", now=NOW)])
    token, _ = issue(old)
    verify(token, ring, now=NOW + 60)
    assert refusal(token, ring, now=NOW + 61) == "key retired"


@pytest.mark.parametrize("alg", ["EdDSA", "ES256"])
def test_a_verify_only_ring_from_the_jwks_verifies_issued_tokens(alg: Algorithm) -> None:
    key = generate_key(alg, now=NOW)
    ring = KeyRing(
        [SigningKey.from_public_jwk(jwk) for jwk in KeyRing([key]).jwks(now=NOW)["keys"]],
        verify_only=True,
    )
    token, issued = issue(key)
    assert verify(token, ring) == issued


# -- typ ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("typ", ["JWT", "AT+JWT", "at+jwt ", "application/at+jwt", "refresh+jwt"])
def test_a_token_of_another_type_is_not_an_access_token(ring: KeyRing, typ: str) -> None:
    key = ring.signing_key()
    assert refusal(forge(header(key, typ=typ), claims(), key), ring) == "wrong typ"


def test_token_kinds_are_mutually_exclusive(ring: KeyRing, key: SigningKey) -> None:
    refresh = encode(claims(), key, typ="refresh+jwt")
    access = encode(claims(), key)
    verify(refresh, ring, typ="refresh+jwt")
    assert refusal(access, ring, typ="refresh+jwt") == "wrong typ"
    assert refusal(refresh, ring) == "wrong typ"


# -- claim types ----------------------------------------------------------------------------------
NOT_NON_EMPTY_STRINGS: tuple[object, ...] = ("", 0, {}, [], None, True, ...)
BAD_CLAIMS: list[tuple[str, object]] = [
    *[
        (name, value)
        for name in ("exp", "iat", "nbf")
        for value in (
            str(NOW + 60),
            True,
            float(NOW + 60),
            None,
            [NOW + 60],
            {"t": NOW + 60},
            -1,
            MAX_SAFE_INT + 1,
            ...,
        )
    ],
    ("iss", ...),
    ("iss", ISSUER + "/"),
    ("iss", ISSUER.upper()),
    ("iss", ISSUER[:-1]),
    ("iss", [ISSUER]),
    ("iss", None),
    ("aud", ...),
    ("aud", "other"),
    ("aud", AUDIENCE + " "),
    ("aud", []),
    ("aud", [None]),
    ("aud", ["other"]),
    ("aud", [AUDIENCE, 1]),
    ("aud", 123),
    ("aud", {"aud": AUDIENCE}),
    *[(name, value) for name in ("sub", "jti") for value in NOT_NON_EMPTY_STRINGS],
    ("roles", "admin"),
    ("roles", [1]),
    ("roles", ["a", None]),
    ("roles", None),
    ("roles", {"admin": True}),
    ("sid", None),
    ("sid", 123),
    ("sid", ["h"]),
    ("gen", -1),
    ("gen", True),
    ("gen", 1.0),
    ("gen", "1"),
    ("gen", None),
    ("gen", MAX_SAFE_INT + 1),
]


@pytest.mark.parametrize(("name", "value"), BAD_CLAIMS, ids=repr)
def test_a_claim_of_the_wrong_type_or_value_is_refused(
    ring: KeyRing, name: str, value: object
) -> None:
    key = ring.signing_key()
    reason = refusal(forge(header(key), claims(**{name: value}), key), ring)
    assert name in reason


@pytest.mark.parametrize(
    "change",
    [
        {"aud": [AUDIENCE]},
        {"aud": ["other", AUDIENCE]},
        {"roles": ...},
        {"gen": ...},
        {"gen": MAX_SAFE_INT},
        {"exp": MAX_SAFE_INT},
        {"sid": ""},
        {"iat": 0},
    ],
    ids=repr,
)
def test_optional_and_list_forms_of_claims_are_accepted(
    ring: KeyRing, change: dict[str, object]
) -> None:
    key = ring.signing_key()
    verified = verify(forge(header(key), claims(**change), key), ring)
    assert verified.aud == AUDIENCE
    if change.get("roles") is ...:
        assert verified.roles == ()
    if change.get("gen") is ...:
        assert verified.gen == 0


# -- time -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "leeway", "accepted"),
    [
        ({"exp": NOW - 29}, 30, True),
        ({"exp": NOW - 30}, 30, False),  # exp is exclusive: now >= exp + leeway is expired
        ({"exp": NOW + 1}, 0, True),
        ({"exp": NOW}, 0, False),
        ({"nbf": NOW + 30}, 30, True),
        ({"nbf": NOW + 31}, 30, False),
        ({"nbf": NOW + 1}, 0, False),
        ({"iat": NOW + 30}, 30, True),
        ({"iat": NOW + 31}, 30, False),
        ({"iat": NOW + 1}, 0, False),
    ],
    ids=repr,
)
def test_time_claims_hold_with_a_small_leeway_for_clock_skew(
    ring: KeyRing, change: dict[str, int], leeway: int, accepted: bool
) -> None:
    key = ring.signing_key()
    token = forge(header(key), claims(**change), key)
    if accepted:
        verify(token, ring, leeway=leeway)
    else:
        assert "token" in refusal(token, ring, leeway=leeway)


def test_max_age_refuses_old_tokens_whatever_their_exp(ring: KeyRing) -> None:
    key = ring.signing_key()
    token = forge(header(key), claims(iat=NOW - 100, exp=NOW + 10**6), key)
    verify(token, ring)
    verify(token, ring, max_age=70)  # 100 s old, within max_age + leeway
    assert refusal(token, ring, max_age=69) == "token older than max_age"


# -- hygiene --------------------------------------------------------------------------------------
def test_a_refusal_tells_the_client_nothing_and_the_log_no_secret(hs_ring: KeyRing) -> None:
    key = hs_ring.signing_key()
    token = forge(header(key), claims(exp=NOW - 3600), key)
    broken = [token, token[:-2], token + ".x", "x" * 5000, forge(header(key, alg="none"), {}, key)]
    assert isinstance(key.private_key, bytes)
    for bad in broken:
        with pytest.raises(InvalidToken) as caught:
            verify(bad, hs_ring)
        assert str(caught.value) == "unauthenticated" and caught.value.detail == "unauthenticated"
        for leak in (bad[:40], key.private_key.hex(), b64(key.private_key)):
            assert leak not in caught.value.reason


_GARBAGE_RING = ring_for("EdDSA")


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=600), st.binary(max_size=600)))
def test_any_garbage_is_refused_with_invalid_token_and_nothing_else(garbage: str | bytes) -> None:
    with pytest.raises(InvalidToken):
        verify_access_token(
            garbage,  # type: ignore[arg-type]  # bytes are accepted at run time too
            _GARBAGE_RING,
            issuer=ISSUER,
            audience=AUDIENCE,
            now=NOW,
        )


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=120), min_size=1, max_size=5))
def test_garbage_in_well_formed_segments_is_refused_with_invalid_token(parts: list[bytes]) -> None:
    token = ".".join(b64(part) for part in parts)
    with pytest.raises(InvalidToken):
        verify_access_token(token, _GARBAGE_RING, issuer=ISSUER, audience=AUDIENCE, now=NOW)
