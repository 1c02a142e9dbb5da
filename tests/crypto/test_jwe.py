"""Encrypted access tokens (crypto/jwe.py): round trip, opacity, content keys, and the strict
front layer. Most attack tokens are encrypted with the real content key (grey-box), so the
only thing that can refuse them is the rule under test; each group first shows the forge
makes an accepted token from the same parts."""

from __future__ import annotations

import base64
import dataclasses
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from authstate.crypto.jwe import (
    content_key,
    decrypt,
    encrypt,
    issue_encrypted_access_token,
    verify_encrypted_access_token,
)
from authstate.crypto.jwt import (
    MAX_HEADER_CHARS,
    MAX_TOKEN_BYTES,
    issue_access_token,
    verify_access_token,
)
from authstate.crypto.keys import KeyRing, SigningKey, generate_key
from authstate.errors import ConfigurationError, InvalidToken
from tests.crypto.forge import AUDIENCE, ISSUER, NOW, b64, claims, forge, header, nested_json
from tests.crypto.jwe_forge import forge_jwe, jwe_header


def verify(token: str | bytes, ring: KeyRing, *, now: float = NOW) -> object:
    return verify_encrypted_access_token(
        token,  # type: ignore[arg-type]
        ring,
        issuer=ISSUER,
        audience=AUDIENCE,
        now=now,
    )


def refusal(token: str | bytes, ring: KeyRing, *, now: float = NOW) -> str:
    """The log reason of the refusal (fails the test if the token is accepted)."""
    with pytest.raises(InvalidToken) as caught:
        verify(token, ring, now=now)
    return caught.value.reason


def issue(key: SigningKey, **overrides: object) -> str:
    arguments: dict[str, object] = {
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "subject": "alice@example.com",
        "roles": ["admin"],
        "now": NOW,
        "ttl_seconds": 900,
        "handle": "family-handle",
    }
    arguments.update(overrides)
    return issue_encrypted_access_token(key, **arguments)[0]  # type: ignore[arg-type]


def segments(token: str) -> list[bytes]:
    return [base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) for part in token.split(".")]


# -- round trip and opacity -----------------------------------------------------------------------
def test_a_token_we_issue_verifies_with_the_same_claims(ring: KeyRing, key: SigningKey) -> None:
    token, issued = issue_encrypted_access_token(
        key,
        issuer=ISSUER,
        audience=AUDIENCE,
        subject="alice",
        roles=["admin", "user"],
        now=NOW,
        ttl_seconds=900,
        handle="h1",
        gen=3,
    )
    verified = verify_encrypted_access_token(token, ring, issuer=ISSUER, audience=AUDIENCE, now=NOW)
    assert verified == issued
    assert (verified.sub, verified.roles, verified.sid, verified.gen) == (
        "alice",
        ("admin", "user"),
        "h1",
        3,
    )
    assert verified.kid == key.kid


def test_the_token_is_five_segments_with_our_header_and_an_empty_encrypted_key(
    key: SigningKey,
) -> None:
    token = issue(key)
    parts = token.split(".")
    assert len(parts) == 5
    assert parts[1] == ""
    assert json.loads(segments(token)[0]) == {
        "alg": "dir",
        "enc": "A256GCM",
        "kid": key.kid,
        "typ": "at+jwt",
    }
    assert len(segments(token)[2]) == 12
    assert len(segments(token)[4]) == 16


def test_the_holder_cannot_read_the_claims(key: SigningKey) -> None:
    """Only the header is JSON; the subject, roles and session handle appear nowhere."""
    token = issue(key)
    _, _, iv, ciphertext, tag = segments(token)
    for part in (iv, ciphertext, tag):
        for secret in (b"alice", b"admin", b"family-handle", b'"sub"'):
            assert secret not in part
        with pytest.raises(ValueError):  # not JSON, not even UTF-8 JSON
            json.loads(part)
    assert not token.split(".")[3].startswith("eyJ")  # the payload is no base64 JSON


def test_every_token_has_a_fresh_iv(key: SigningKey) -> None:
    body = claims()
    tokens = {encrypt(body, key) for _ in range(20)}
    assert len(tokens) == 20
    assert len({token.split(".")[2] for token in tokens}) == 20


def test_the_claim_rules_still_apply(ring: KeyRing, key: SigningKey) -> None:
    assert "exp" in refusal(issue(key, now=NOW - 2000), ring)
    assert "aud" in refusal(issue(key, audience="other"), ring)
    assert "iss" in refusal(issue(key, issuer="https://evil.example"), ring)
    assert "typ" in refusal(forge_jwe(jwe_header(key, typ="JWT"), claims(), key), ring)


# -- content keys -----------------------------------------------------------------------------
def test_the_content_key_is_hkdf_over_the_ring_key_with_its_own_label(key: SigningKey) -> None:
    derived = content_key(key)
    assert len(derived) == 32
    assert derived == content_key(key)
    again = dataclasses.replace(key)  # another object for the same key: the same content key
    assert content_key(again) == derived
    private = key.private_key
    if isinstance(private, bytes):
        material = private
        assert derived != material  # the HS256 secret is not used as the AES key
    elif isinstance(private, Ed25519PrivateKey):
        material = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    else:
        assert isinstance(private, ec.EllipticCurvePrivateKey)
        material = private.private_numbers().private_value.to_bytes(32, "big")
    expected = HKDF(
        algorithm=SHA256(),
        length=32,
        salt=None,
        info=f"authstate/jwe/A256GCM/{key.kid}".encode(),
    ).derive(material)
    assert derived == expected


def test_two_ring_keys_have_unrelated_content_keys(ring: KeyRing) -> None:
    alg = ring.signing_key().alg
    other = generate_key(alg, now=NOW)
    assert content_key(other) != content_key(ring.signing_key())


def test_a_verify_only_key_can_neither_encrypt_nor_decrypt(ed_ring: KeyRing) -> None:
    key = ed_ring.signing_key()
    public = SigningKey.from_public_jwk(key.public_jwk())
    with pytest.raises(ConfigurationError):
        content_key(public)
    with pytest.raises(ConfigurationError):
        encrypt(claims(), public)
    assert "verify-only" in refusal(issue(key), KeyRing([public], verify_only=True))


def test_the_jwks_never_carries_a_content_key(ring: KeyRing, key: SigningKey) -> None:
    published = json.dumps(ring.jwks(now=NOW))
    assert b64(content_key(key)) not in published
    assert '"oct"' not in published and '"k"' not in published


# -- keys: wrong, unknown, rotated, retired ------------------------------------------------------
def test_a_token_under_another_rings_key_is_refused_as_unknown_kid(ring: KeyRing) -> None:
    other = generate_key(ring.signing_key().alg, now=NOW)
    assert refusal(issue(other), ring) == "unknown kid"


def test_a_kid_naming_another_key_of_the_ring_fails_the_tag(ring: KeyRing) -> None:
    old = ring.signing_key()
    new = generate_key(old.alg, now=NOW)
    both = KeyRing([old, new])
    token = forge_jwe(jwe_header(new), claims(), old)  # encrypted under old, says new
    assert verify(forge_jwe(jwe_header(old), claims(), old), both)
    assert "tag" in refusal(token, both)


def test_malformed_kids_are_refused(key: SigningKey, ring: KeyRing) -> None:
    for kid in ("", "../keys", "a" * 65, "ké"):
        assert "kid" in refusal(forge_jwe(jwe_header(key, kid=kid), claims(), key), ring)


def test_a_rotated_key_still_decrypts_until_it_is_retired(ring: KeyRing) -> None:
    old = ring.signing_key()
    retiring = dataclasses.replace(old, retire_after=NOW + 100)
    new = generate_key(old.alg, now=NOW + 1)
    rotated = KeyRing([retiring, new])
    assert rotated.signing_key() is new
    token = issue(old)
    assert verify(token, rotated, now=NOW + 50)
    assert verify(token, rotated, now=NOW + 100)
    assert refusal(token, rotated, now=NOW + 101) == "key retired"
    assert verify(issue(new, now=NOW + 1), rotated, now=NOW + 200)


# -- tampering with each of the five segments ------------------------------------------------------
def _flip(segment: str, position: int = 0) -> str:
    """The segment with one bit of its decoded bytes flipped, re-encoded canonically."""
    raw = bytearray(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    raw[position] ^= 0x01
    return b64(bytes(raw))


@pytest.mark.parametrize("index", [0, 2, 3, 4])
@pytest.mark.parametrize("position", [0, -1])
def test_a_flipped_bit_in_any_segment_is_refused(
    ring: KeyRing, key: SigningKey, index: int, position: int
) -> None:
    token = issue(key)
    assert verify(token, ring)
    parts = token.split(".")
    parts[index] = _flip(parts[index], position)
    refusal(".".join(parts), ring)


def test_a_header_respelled_with_the_same_members_fails_the_tag(
    ring: KeyRing, key: SigningKey
) -> None:
    """The header segment is the AAD: the same JSON spelled another way is another token."""
    token = issue(key)
    parts = token.split(".")
    respelled = json.dumps(json.loads(segments(token)[0]), indent=1).encode()
    parts[0] = b64(respelled)
    assert "tag" in refusal(".".join(parts), ring)


@pytest.mark.parametrize("encrypted_key", ["AA", "AAAA", "A" * 43])
def test_a_non_empty_encrypted_key_is_refused(
    ring: KeyRing, key: SigningKey, encrypted_key: str
) -> None:
    parts = issue(key).split(".")
    parts[1] = encrypted_key
    assert "encrypted key" in refusal(".".join(parts), ring)


def test_a_truncated_or_extended_tag_or_iv_is_refused(ring: KeyRing, key: SigningKey) -> None:
    parts = issue(key).split(".")
    raw_iv, raw_tag = segments(issue(key))[2], segments(issue(key))[4]
    for index, raw in ((2, raw_iv[:-1]), (2, raw_iv + b"\0" * 4), (4, raw_tag[:-1])):
        changed = list(parts)
        changed[index] = b64(raw)
        refusal(".".join(changed), ring)
    # Truncated tags are what AES-GCM libraries tend to accept: a 12-byte tag with our key.
    full = issue(key).split(".")
    full[4] = full[4][:16]
    assert "tag" in refusal(".".join(full), ring)


def test_swapping_segments_between_two_valid_tokens_is_refused(
    ring: KeyRing, key: SigningKey
) -> None:
    first, second = issue(key).split("."), issue(key, subject="bob").split(".")
    for index in (2, 3, 4):
        mixed = list(first)
        mixed[index] = second[index]
        refusal(".".join(mixed), ring)


# -- alg / enc confusion -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "changes",
    [
        {"alg": "none"},
        {"alg": "A256KW"},
        {"alg": "RSA-OAEP"},
        {"alg": "ECDH-ES"},
        {"alg": "PBES2-HS256+A128KW"},
        {"alg": "DIR"},
        {"alg": "HS256"},
        {"alg": "EdDSA"},
        {"enc": "A128GCM"},
        {"enc": "A192GCM"},
        {"enc": "A256CBC-HS512"},
        {"enc": "A128CBC-HS256"},
        {"enc": "a256gcm"},
        {"enc": "none"},
        {"enc": ...},
        {"alg": ...},
    ],
    ids=repr,
)
def test_any_other_alg_or_enc_is_refused_even_with_a_valid_tag(
    ring: KeyRing, key: SigningKey, changes: dict[str, object]
) -> None:
    assert verify(forge_jwe(jwe_header(key), claims(), key), ring)
    refusal(forge_jwe(jwe_header(key, **changes), claims(), key), ring)


def test_a_128_bit_key_under_enc_a128gcm_is_refused(ring: KeyRing, key: SigningKey) -> None:
    """A downgrade: the first half of the content key, announced as A128GCM."""
    token = forge_jwe(jwe_header(key, enc="A128GCM"), claims(), content_key(key)[:16])
    assert "enc" in refusal(token, ring)


def test_a_jws_is_refused_where_a_jwe_is_expected(ring: KeyRing, key: SigningKey) -> None:
    jws, _ = issue_access_token(
        key, issuer=ISSUER, audience=AUDIENCE, subject="alice", roles=[], now=NOW, ttl_seconds=900
    )
    assert verify_access_token(jws, ring, issuer=ISSUER, audience=AUDIENCE, now=NOW)
    assert "segments" in refusal(jws, ring)


def test_a_jwe_is_refused_where_a_jws_is_expected(ring: KeyRing, key: SigningKey) -> None:
    with pytest.raises(InvalidToken):
        verify_access_token(issue(key), ring, issuer=ISSUER, audience=AUDIENCE, now=NOW)


def test_a_three_segment_token_with_a_jwe_header_is_refused_by_both(
    ring: KeyRing, key: SigningKey
) -> None:
    """A JWS whose header claims dir/A256GCM, signed with the real key."""
    token = forge(jwe_header(key), claims(), key)
    refusal(token, ring)
    with pytest.raises(InvalidToken):
        verify_access_token(token, ring, issuer=ISSUER, audience=AUDIENCE, now=NOW)
    signed_jws_header = forge(header(key), claims(), key)
    refusal(signed_jws_header, ring)


@pytest.mark.parametrize(
    "changes",
    [
        {"zip": "DEF"},
        {"cty": "JWT"},
        {"crit": ["exp"]},
        {"jku": "https://evil.example/jwks"},
        {"jwk": {"kty": "oct", "k": "AAAA"}},
        {"epk": {"kty": "EC"}},
        {"p2c": 1},
        {"iv": "AAAA"},
        {"extra": "x"},
        {"typ": ...},
        {"kid": ...},
        {"kid": 1},
        {"typ": None},
        {"alg": ["dir"]},
    ],
    ids=repr,
)
def test_the_header_allowlist_refuses_everything_else(
    ring: KeyRing, key: SigningKey, changes: dict[str, object]
) -> None:
    refusal(forge_jwe(jwe_header(key, **changes), claims(), key), ring)


def test_a_zip_header_names_the_rule(ring: KeyRing, key: SigningKey) -> None:
    assert refusal(forge_jwe(jwe_header(key, zip="DEF"), claims(), key), ring) == (
        "header member zip refused"
    )


# -- size, base64, JSON ----------------------------------------------------------------------------
def test_an_oversized_token_is_refused_before_any_work(ring: KeyRing, key: SigningKey) -> None:
    big = forge_jwe(jwe_header(key), claims(pad="x" * 3000), key)
    assert len(big) > MAX_TOKEN_BYTES
    assert refusal(big, ring) == "token too large"
    with pytest.raises(ValueError, match="cookie cap"):
        encrypt(claims(pad="x" * 3000), key)


def test_an_oversized_header_is_refused(ring: KeyRing, key: SigningKey) -> None:
    token = forge_jwe(jwe_header(key, kid="k" + "a" * MAX_HEADER_CHARS), claims(), key)
    assert refusal(token, ring) == "header too large"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda p: [*p[:2], p[2] + "=", *p[3:]],  # padding
        lambda p: [*p[:3], p[3].replace(p[3][0], "+", 1), *p[4:]],  # base64, not base64url
        lambda p: [*p[:4], p[4] + " "],  # whitespace
        lambda p: [*p[:2], p[2] + "A", *p[3:]],  # impossible length (17 chars)
        lambda p: [*p[:4], p[4][:-1] + "B"],  # 16 bytes: the last char has 2 unused bits
        lambda p: [*p, "AAAA"],  # six segments
        lambda p: p[:4],  # four segments
        lambda p: [*p[:3], "", *p[4:]],  # empty ciphertext
        lambda p: ["", *p[1:]],  # empty header
    ],
)
def test_bad_base64url_and_shapes_are_refused(
    ring: KeyRing, key: SigningKey, mangle: object
) -> None:
    parts = issue(key).split(".")
    refusal(".".join(mangle(parts)), ring)  # type: ignore[operator]


def test_non_ascii_and_non_text_are_refused(ring: KeyRing, key: SigningKey) -> None:
    refusal(issue(key).encode() + "é".encode(), ring)
    refusal(issue(key).replace("A", "Ä", 1), ring)
    refusal(12345, ring)  # type: ignore[arg-type]


def test_the_token_may_come_as_ascii_bytes(ring: KeyRing, key: SigningKey) -> None:
    assert verify(issue(key).encode(), ring)


@pytest.mark.parametrize("depth", [33, 200, 1000])
def test_deep_json_in_the_claims_is_refused_even_with_a_valid_tag(
    ring: KeyRing, key: SigningKey, depth: int
) -> None:
    assert "nested too deeply" in refusal(forge_jwe(jwe_header(key), nested_json(depth), key), ring)


def test_deep_json_in_the_header_is_refused(ring: KeyRing, key: SigningKey) -> None:
    head = (
        f'{{"alg":"dir","enc":"A256GCM","kid":"{key.kid}","typ":"at+jwt","x":'.encode()
        + b"[" * 40
        + b"]" * 40
        + b"}"
    )
    assert "nested too deeply" in refusal(forge_jwe(head, claims(), key), ring)


@pytest.mark.parametrize(
    "body",
    [
        b'{"sub":"a","sub":"b"}',
        b'{"exp":NaN}',
        b"[1,2]",
        b"\xff\xfe{}",
        b'{"a":"\\ud800"}',
    ],
)
def test_claims_that_are_not_strict_json_are_refused_even_with_a_valid_tag(
    ring: KeyRing, key: SigningKey, body: bytes
) -> None:
    assert "claims" in refusal(forge_jwe(jwe_header(key), body, key), ring)


def test_decrypt_returns_the_checked_header_and_the_plaintext(
    ring: KeyRing, key: SigningKey
) -> None:
    head, plaintext = decrypt(forge_jwe(jwe_header(key), b'{"any":1}', key), ring, now=NOW)
    assert head == jwe_header(key)
    assert plaintext == b'{"any":1}'


# -- properties -------------------------------------------------------------------------------
_KEY = generate_key("EdDSA", now=NOW - 60)
_RING = KeyRing([_KEY])
_TOKEN = issue(_KEY)
_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_one_character_changed_inserted_or_removed_is_refused(data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(_TOKEN) - 1))
    character = data.draw(st.sampled_from(_B64URL + ".=+/ "))
    edit = data.draw(st.sampled_from(["replace", "insert", "delete"]))
    if edit == "replace":
        assume(character != _TOKEN[position])
        mutated = _TOKEN[:position] + character + _TOKEN[position + 1 :]
    elif edit == "insert":
        mutated = _TOKEN[:position] + character + _TOKEN[position:]
    else:
        mutated = _TOKEN[:position] + _TOKEN[position + 1 :]
    refusal(mutated, _RING)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=600),
        st.binary(max_size=600),
        st.lists(st.text(_B64URL, max_size=40), min_size=1, max_size=7).map(".".join),
    )
)
def test_arbitrary_input_is_only_ever_invalid_token(value: str | bytes) -> None:
    refusal(value, _RING)


def test_the_ring_knows_the_jwe_header_its_keys_write_and_parses_any_other_in_full() -> None:
    """Our own header text is recognised from the ring (KeyRing.header_table); the same
    header spelled otherwise (members reordered) is parsed and checked in full, and still
    decrypts; a member too many is refused either way; a retired key's header is refused."""
    import authstate.crypto.jwe as jwe_module

    key = generate_key("EdDSA", now=NOW)
    ring = KeyRing([key])
    token = issue(key)
    assert token.split(".")[0] in ring.header_table(jwe_module._access_header)
    verify(token, ring)
    reordered = {"typ": "at+jwt", "kid": key.kid, "enc": "A256GCM", "alg": "dir"}
    other = forge_jwe(reordered, claims(), key)
    assert other.split(".")[0] not in ring.header_table(jwe_module._access_header)
    jwe_module.forget_known_headers()
    verify(other, ring)
    assert refusal(forge_jwe(jwe_header(key, zip="DEF"), claims(), key), ring) == (
        "header member zip refused"
    )
    retired = dataclasses.replace(key, retire_after=NOW - 1)
    assert refusal(token, KeyRing([retired, generate_key("EdDSA", now=NOW)])) == "key retired"
