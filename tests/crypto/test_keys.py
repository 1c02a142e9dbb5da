"""Signing keys, their storage and publication, and the key ring."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.hashes import SHA256

from authstate.crypto.keys import Algorithm, KeyRing, SigningKey, generate_key
from authstate.errors import ConfigurationError, InvalidToken
from tests.crypto.forge import NOW, b64

P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


# -- signing and verifying ----------------------------------------------------------------------
def test_a_signature_verifies_with_its_key_only(key: SigningKey) -> None:
    signature = key.sign(b"header.payload")
    key.verify(b"header.payload", signature)
    with pytest.raises(InvalidToken):
        key.verify(b"header.payloaD", signature)
    with pytest.raises(InvalidToken):
        generate_key(key.alg, now=NOW).verify(b"header.payload", signature)


@pytest.mark.parametrize("cut", [slice(0, -1), slice(1, None), slice(0, 0)])
def test_a_truncated_signature_is_refused(key: SigningKey, cut: slice) -> None:
    signature = key.sign(b"msg")
    with pytest.raises(InvalidToken):
        key.verify(b"msg", signature[cut])
    with pytest.raises(InvalidToken):
        key.verify(b"msg", signature + b"\x00")


def test_hs256_is_hmac_sha256_of_the_signing_input(hs_ring: KeyRing) -> None:
    key = hs_ring.signing_key()
    assert isinstance(key.private_key, bytes)
    assert key.sign(b"x") == hmac.new(key.private_key, b"x", hashlib.sha256).digest()


def test_es256_signatures_are_64_byte_low_s_and_verify_with_plain_cryptography(
    es_ring: KeyRing,
) -> None:
    key = es_ring.signing_key()
    assert isinstance(key.public_key, ec.EllipticCurvePublicKey)
    for i in range(64):  # about half of raw ECDSA signatures are high-S
        message = b"m%d" % i
        signature = key.sign(message)
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        assert len(signature) == 64 and s <= P256_N // 2
        key.public_key.verify(encode_dss_signature(r, s), message, ec.ECDSA(SHA256()))


def test_a_malleated_high_s_es256_signature_is_refused(es_ring: KeyRing) -> None:
    key = es_ring.signing_key()
    assert isinstance(key.public_key, ec.EllipticCurvePublicKey)
    signature = key.sign(b"msg")
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    twin = r.to_bytes(32, "big") + (P256_N - s).to_bytes(32, "big")
    # The twin is a mathematically valid signature...
    key.public_key.verify(encode_dss_signature(r, P256_N - s), b"msg", ec.ECDSA(SHA256()))
    # ...which we refuse so that a token has exactly one valid signature.
    with pytest.raises(InvalidToken) as caught:
        key.verify(b"msg", twin)
    assert "high-S" in caught.value.reason


def test_a_der_encoded_es256_signature_is_refused(es_ring: KeyRing) -> None:
    key = es_ring.signing_key()
    signature = key.sign(b"msg")
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    with pytest.raises(InvalidToken):
        key.verify(b"msg", encode_dss_signature(r, s))


@pytest.mark.parametrize(
    ("r", "s"), [(0, 0), (0, 1), (1, 0), (P256_N, 1), (1, P256_N), (2**256 - 1, 1), (1, 2**256 - 1)]
)
def test_es256_signature_values_out_of_range_are_refused(es_ring: KeyRing, r: int, s: int) -> None:
    # Checked by us before OpenSSL sees them (CVE-2022-21449 accepted r = s = 0).
    with pytest.raises(InvalidToken) as caught:
        es_ring.signing_key().verify(b"msg", r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    assert caught.value.reason == "ES256 signature value out of range"


# -- storage --------------------------------------------------------------------------------------
def test_a_key_restored_from_its_private_bytes_signs_and_verifies_the_same(key: SigningKey) -> None:
    restored = SigningKey.from_private_bytes(
        key.kid, key.alg, key.private_bytes(), created_at=key.created_at, retire_after=7.0
    )
    assert (restored.kid, restored.alg, restored.created_at) == (key.kid, key.alg, key.created_at)
    assert restored.retire_after == 7.0
    restored.verify(b"m", key.sign(b"m"))
    key.verify(b"m", restored.sign(b"m"))


def test_asymmetric_private_bytes_are_pkcs8_der(key: SigningKey) -> None:
    if key.alg == "HS256":
        assert key.private_bytes() == key.private_key
    else:
        loaded = serialization.load_der_private_key(key.private_bytes(), password=None)
        assert type(loaded) is type(key.private_key)


@pytest.mark.parametrize(
    ("alg", "data"),
    [
        ("EdDSA", b"not der"),
        ("ES256", b""),
        ("RS256", b"x" * 32),
        ("none", b"x" * 32),
        ("HS256", b"x" * 31),
    ],
)
def test_unusable_stored_key_bytes_are_a_configuration_error(alg: str, data: bytes) -> None:
    with pytest.raises(ConfigurationError):
        SigningKey.from_private_bytes("kid", alg, data, created_at=0.0)  # type: ignore[arg-type]


def test_stored_bytes_of_one_algorithm_are_not_taken_for_another() -> None:
    ed_bytes = generate_key("EdDSA", now=0).private_bytes()
    p384 = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ConfigurationError):
        SigningKey.from_private_bytes("kid", "ES256", ed_bytes, created_at=0.0)
    with pytest.raises(ConfigurationError):
        SigningKey.from_private_bytes("kid", "ES256", p384, created_at=0.0)


# -- construction ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("alg", "private"),
    [
        ("ES256", Ed25519PrivateKey.generate()),
        ("EdDSA", ec.generate_private_key(ec.SECP256R1())),
        ("ES256", ec.generate_private_key(ec.SECP384R1())),
        ("HS256", Ed25519PrivateKey.generate()),
        ("EdDSA", b"x" * 32),
        ("HS256", b"x" * 31),
        ("HS256", b""),
        ("HS256", "x" * 32),
        ("RS256", b"x" * 32),
        ("EdDSA", None),
    ],
)
def test_a_key_whose_parts_do_not_fit_its_algorithm_is_refused(alg: str, private: object) -> None:
    with pytest.raises(ConfigurationError):
        SigningKey("kid", alg, 0.0, private_key=private)  # type: ignore[arg-type]


def test_a_public_part_that_does_not_match_the_private_part_is_refused() -> None:
    other = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(ConfigurationError):
        SigningKey("kid", "EdDSA", 0.0, private_key=Ed25519PrivateKey.generate(), public_key=other)


@pytest.mark.parametrize("kid", ["", "a" * 65, "../../dev/null", "a b", "kid\n", "ké"])
def test_a_key_id_that_is_not_a_short_url_safe_token_is_refused(kid: str) -> None:
    with pytest.raises(ConfigurationError):
        SigningKey(kid, "HS256", 0.0, private_key=b"x" * 32)


def test_generated_keys_have_random_url_safe_kids_and_their_creation_time() -> None:
    keys = [generate_key("EdDSA", now=123.0) for _ in range(50)]
    assert len({k.kid for k in keys}) == 50
    assert all(k.created_at == 123.0 and 16 <= len(k.kid) <= 64 for k in keys)
    with pytest.raises(ConfigurationError):
        generate_key("RS256", now=0)  # type: ignore[arg-type]


def test_the_repr_of_a_key_shows_no_secret(key: SigningKey) -> None:
    text = repr(key)
    assert key.kid in text
    secret = key.private_bytes()
    for fragment in (secret.hex(), repr(secret), b64(secret), "private_key"):
        assert fragment not in text


# -- publication ----------------------------------------------------------------------------------
def test_the_public_jwk_holds_public_parameters_only(key: SigningKey) -> None:
    if key.alg == "HS256":
        with pytest.raises(ConfigurationError):
            key.public_jwk()
        return
    jwk = key.public_jwk()
    assert not PRIVATE_MEMBERS & jwk.keys()
    assert jwk["kid"] == key.kid and jwk["alg"] == key.alg and jwk["use"] == "sig"
    expected = {"OKP": {"crv", "x"}, "EC": {"crv", "x", "y"}}[jwk["kty"]]
    assert jwk.keys() == expected | {"kty", "kid", "alg", "use"}


@pytest.mark.parametrize("alg", ["EdDSA", "ES256"])
def test_a_key_imported_from_its_public_jwk_verifies_but_cannot_sign(alg: Algorithm) -> None:
    key = generate_key(alg, now=NOW)
    public = SigningKey.from_public_jwk(key.public_jwk())
    assert not public.can_sign
    public.verify(b"m", key.sign(b"m"))
    with pytest.raises(InvalidToken):
        public.verify(b"m", key.sign(b"n"))
    with pytest.raises(ConfigurationError):
        public.sign(b"m")
    with pytest.raises(ConfigurationError):
        public.private_bytes()


def test_a_private_jwk_round_trips_into_a_signing_key(key: SigningKey) -> None:
    if key.alg == "HS256":
        assert isinstance(key.private_key, bytes)
        jwk: dict[str, object] = {"kty": "oct", "alg": "HS256", "kid": key.kid}
        jwk["k"] = b64(key.private_key)
    else:
        jwk = dict(key.public_jwk())
        private = key.private_key
        if isinstance(private, Ed25519PrivateKey):
            raw = private.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
        else:
            assert isinstance(private, ec.EllipticCurvePrivateKey)
            raw = private.private_numbers().private_value.to_bytes(32, "big")
        jwk["d"] = b64(raw)
    restored = SigningKey.from_private_jwk(jwk)
    key.verify(b"m", restored.sign(b"m"))


def _es256_jwk() -> dict[str, object]:
    return dict(generate_key("ES256", now=0).public_jwk())


def _ed_jwk() -> dict[str, object]:
    return dict(generate_key("EdDSA", now=0).public_jwk())


def _with(jwk: dict[str, object], **changes: object) -> dict[str, object]:
    out = {**jwk, **changes}
    return {name: value for name, value in out.items() if value is not ...}


def _off_curve(jwk: dict[str, object]) -> dict[str, object]:
    y = bytearray(32)
    y[-1] = 1
    return _with(jwk, y=b64(bytes(y)))


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: _with(_ed_jwk(), d=b64(b"\x01" * 32)), id="private member d"),
        pytest.param(lambda: _with(_es256_jwk(), d=b64(b"\x01" * 32)), id="EC with d"),
        pytest.param(
            lambda: {"kty": "oct", "alg": "HS256", "kid": "k", "k": b64(b"x" * 32)}, id="oct"
        ),
        pytest.param(lambda: _with(_ed_jwk(), alg=...), id="no alg"),
        pytest.param(lambda: _with(_ed_jwk(), alg="none"), id="alg none"),
        pytest.param(lambda: _with(_ed_jwk(), alg="Ed25519"), id="alg Ed25519"),
        pytest.param(lambda: _with(_ed_jwk(), alg="ES256"), id="alg of another kty"),
        pytest.param(lambda: _with(_es256_jwk(), alg="ES384"), id="alg ES384"),
        pytest.param(lambda: _with(_es256_jwk(), crv="P-384"), id="crv P-384"),
        pytest.param(lambda: _with(_es256_jwk(), crv="secp256k1"), id="crv secp256k1"),
        pytest.param(lambda: _with(_ed_jwk(), crv="Ed448"), id="crv Ed448"),
        pytest.param(lambda: _with(_es256_jwk(), kty="RSA"), id="kty RSA"),
        pytest.param(lambda: _with(_es256_jwk(), y=...), id="no y"),
        pytest.param(lambda: _with(_ed_jwk(), x=b64(b"\x01" * 31)), id="short x"),
        pytest.param(lambda: _with(_ed_jwk(), x=str(_ed_jwk()["x"]) + "="), id="padded x"),
        pytest.param(lambda: _with(_es256_jwk(), x=7), id="x not a string"),
        pytest.param(lambda: _off_curve(_es256_jwk()), id="point not on the curve"),
        pytest.param(lambda: _with(_ed_jwk(), use="enc"), id="use enc"),
        pytest.param(lambda: _with(_ed_jwk(), key_ops=["encrypt"]), id="key_ops encrypt"),
        pytest.param(lambda: _with(_ed_jwk(), key_ops="verify"), id="key_ops not a list"),
        pytest.param(lambda: _with(_ed_jwk(), kid=...), id="no kid"),
        pytest.param(lambda: _with(_ed_jwk(), kid="../../etc/passwd"), id="kid path"),
        pytest.param(lambda: _with(_ed_jwk(), kid="a" * 65), id="kid too long"),
        pytest.param(lambda: [("kty", "OKP")], id="not an object"),
    ],
)
def test_a_public_jwk_we_cannot_trust_is_refused(make: Callable[[], object]) -> None:
    with pytest.raises(ConfigurationError):
        SigningKey.from_public_jwk(make())  # type: ignore[arg-type]


@pytest.mark.parametrize("with_k", [True, False])
def test_a_symmetric_jwk_is_never_a_published_key(with_k: bool) -> None:
    jwk = {"kty": "oct", "alg": "HS256", "kid": "k"} | ({"k": b64(b"x" * 32)} if with_k else {})
    with pytest.raises(ConfigurationError, match="symmetric"):
        SigningKey.from_public_jwk(jwk)


def test_a_public_jwk_with_extra_members_and_verify_key_ops_is_accepted() -> None:
    # RFC 7517 §4: members a reader does not understand are ignored.
    jwk = _with(_ed_jwk(), key_ops=["verify"], x5t="ignored", ext=True)
    assert SigningKey.from_public_jwk(jwk).alg == "EdDSA"


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "oct", "alg": "HS256", "kid": "k", "k": b64(b"x" * 31)},
        {"kty": "oct", "alg": "HS256", "kid": "k", "k": ""},
        {"kty": "oct", "alg": "HS512", "kid": "k", "k": b64(b"x" * 64)},
        {"kty": "oct", "alg": "A256GCM", "kid": "k", "k": b64(b"x" * 32)},
        {"kty": "oct", "alg": "HS256", "kid": "k"},
    ],
    ids=["short", "empty", "HS512", "AES key", "no k"],
)
def test_a_private_jwk_with_a_weak_or_foreign_secret_is_refused(jwk: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        SigningKey.from_private_jwk(jwk)


def test_a_private_jwk_whose_d_does_not_match_its_public_point_is_refused() -> None:
    jwk = _with(_es256_jwk(), d=b64((12345).to_bytes(32, "big")))
    with pytest.raises(ConfigurationError):
        SigningKey.from_private_jwk(jwk)


# -- the ring -------------------------------------------------------------------------------------
def test_a_ring_with_a_duplicate_kid_is_refused() -> None:
    first = generate_key("EdDSA", now=0)
    second = replace(generate_key("EdDSA", now=1), kid=first.kid)
    with pytest.raises(ConfigurationError, match="duplicate"):
        KeyRing([first, second])


@pytest.mark.parametrize("asymmetric", ["EdDSA", "ES256"])
def test_a_ring_mixing_hmac_and_asymmetric_keys_is_refused(asymmetric: str) -> None:
    keys = [generate_key("HS256", now=0), generate_key(asymmetric, now=1)]  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="mix"):
        KeyRing(keys)
    with pytest.raises(ConfigurationError, match="mix"):
        KeyRing(reversed(keys))


def test_a_ring_may_hold_eddsa_and_es256_keys_during_an_algorithm_change() -> None:
    ring = KeyRing([generate_key("ES256", now=0), generate_key("EdDSA", now=1)])
    assert ring.signing_key().alg == "EdDSA"


def test_a_short_hmac_secret_never_reaches_a_ring() -> None:
    with pytest.raises(ConfigurationError, match="32 bytes"):
        KeyRing([SigningKey("short", "HS256", 0.0, private_key=b"s" * 16)])


def test_an_empty_ring_is_refused_unless_it_is_verify_only() -> None:
    with pytest.raises(ConfigurationError):
        KeyRing([])
    ring = KeyRing([], verify_only=True)
    assert ring.keys == () and ring.jwks(now=NOW) == {"keys": []}
    with pytest.raises(ConfigurationError):
        ring.signing_key()


def test_a_ring_of_public_keys_verifies_but_has_no_signing_key() -> None:
    public = SigningKey.from_public_jwk(generate_key("EdDSA", now=0).public_jwk())
    ring = KeyRing([public], verify_only=True)
    assert ring.verification_key(public.kid, now=NOW) is public
    with pytest.raises(ConfigurationError):
        ring.signing_key()


def test_the_newest_active_key_signs() -> None:
    old = generate_key("EdDSA", now=100)
    new = generate_key("EdDSA", now=200)
    retired_newer = replace(generate_key("EdDSA", now=300), retire_after=NOW)
    public_newest = SigningKey.from_public_jwk(generate_key("EdDSA", now=0).public_jwk())
    public_newest = replace(public_newest, created_at=400)
    ring = KeyRing([new, retired_newer, old, public_newest])
    assert ring.signing_key() is new


def test_a_retired_key_verifies_until_its_retire_after_then_not_at_all() -> None:
    active = generate_key("EdDSA", now=0)
    retired = replace(generate_key("EdDSA", now=0), retire_after=NOW)
    ring = KeyRing([active, retired])
    assert ring.verification_key(retired.kid, now=NOW) is retired
    assert [k["kid"] for k in ring.jwks(now=NOW)["keys"]] == [active.kid, retired.kid]
    with pytest.raises(InvalidToken) as caught:
        ring.verification_key(retired.kid, now=NOW + 1)
    assert caught.value.reason == "key retired"
    assert [k["kid"] for k in ring.jwks(now=NOW + 1)["keys"]] == [active.kid]


@pytest.mark.parametrize(
    "kid",
    ["unknown", "", "../../../../dev/null", "x' OR '1'='1", "a" * 65, "k\x00", "*", 123, None],
)
def test_an_unknown_or_malformed_kid_finds_no_key(ring: KeyRing, kid: object) -> None:
    with pytest.raises(InvalidToken):
        ring.verification_key(kid, now=NOW)  # type: ignore[arg-type]


def test_the_jwks_never_carries_private_or_symmetric_material(ring: KeyRing) -> None:
    document = ring.jwks(now=NOW)
    if ring.signing_key().alg == "HS256":
        assert document == {"keys": []}
        return
    (jwk,) = document["keys"]
    assert not PRIVATE_MEMBERS & jwk.keys()
    key = ring.signing_key()
    raw = key.private_bytes()
    assert b64(raw) not in str(document) and raw.hex() not in str(document)


def test_the_ring_repr_lists_kids_only(ring: KeyRing) -> None:
    text = repr(ring)
    assert ring.signing_key().kid in text
    assert ring.signing_key().private_bytes().hex() not in text
