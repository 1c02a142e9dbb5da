"""A. Signature and algorithm (T01-T15): no token the server did not sign, with the key
and algorithm it chose, ever authenticates anyone.

Black-box cases start from mallory's own cookie and try to become alice over HTTP, in
both JWT modes; grey-box cases hold the server's test key. The unit-level cases of the
token front layer live in ``tests/crypto`` (named in each docstring) and are not repeated.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import sys
from collections.abc import Callable
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from authstate.cookies import AUTH_COOKIE
from authstate.crypto.ids import b64url_encode
from tests.crypto.forge import b64, raw_json
from tests.security.harness import Node, decode_segment, recorder, running

pytestmark = pytest.mark.anyio

P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def parts(token: str) -> tuple[str, str, str]:
    header, payload, signature = token.split(".")
    return header, payload, signature


def with_claims(token: str, **changes: Any) -> str:
    """The token with its payload re-encoded with ``changes``, header and signature kept."""
    header, payload, signature = parts(token)
    claims = decode_segment(payload) | changes
    return f"{header}.{b64(raw_json(claims))}.{signature}"


def hmac_token(header: dict[str, Any], claims: dict[str, Any], secret: bytes, digest: str) -> str:
    signing_input = f"{b64(raw_json(header))}.{b64(raw_json(claims))}"
    tag = hmac.new(secret, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64(tag)}"


async def assert_refused(node: Node, *tokens: str) -> None:
    for token in tokens:
        assert await node.whoami_token(token) is None, token


# -- T01 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE", "none "])
@pytest.mark.parametrize("keep_signature", [False, True])
async def test_an_unsigned_alg_none_token_never_authenticates(
    jwt_node: Node, alg: str, keep_signature: bool
) -> None:
    """T01: ``alg: none`` in any spelling, with or without the old signature, is 401 and
    never makes mallory alice (unit level: test_alg_none_or_a_case_variant_is_refused...)."""
    mallory = await jwt_node.login("mallory")
    _, _, signature = parts(mallory.auth)
    claims = mallory.token_claims() | {"sub": jwt_node.users["alice"]}
    for header in ({"alg": alg, "typ": "JWT"}, {"alg": alg, "typ": "at+jwt", "kid": "x"}):
        token = f"{b64(raw_json(header))}.{b64(raw_json(claims))}."
        if keep_signature:
            token += signature
        await assert_refused(jwt_node, token)
    assert await jwt_node.whoami_token(mallory.auth) == mallory.user_id


# -- T02 -----------------------------------------------------------------------------------------
async def test_a_stripped_signature_never_authenticates(jwt_node_any_alg: Node) -> None:
    """T02: the real header and alice's claims with an empty or missing signature: 401."""
    node = jwt_node_any_alg
    mallory = await node.login("mallory")
    header, _, _ = parts(mallory.auth)
    claims = b64(raw_json(mallory.token_claims() | {"sub": node.users["alice"]}))
    await assert_refused(node, f"{header}.{claims}.", f"{header}.{claims}")


# -- T03 -----------------------------------------------------------------------------------------
async def test_a_payload_changed_under_the_old_signature_never_authenticates(
    jwt_node_any_alg: Node,
) -> None:
    """T03: another ``sub``, an added admin role, ``exp`` one second later, or one character
    changed in the header, payload or signature: 401 every time."""
    node = jwt_node_any_alg
    mallory = await node.login("mallory")
    token = mallory.auth
    exp = mallory.token_claims()["exp"]
    tampered = [
        with_claims(token, sub=node.users["alice"]),
        with_claims(token, roles=["staff", "admin"]),
        with_claims(token, exp=exp + 1),
    ]
    for index in range(3):
        segments = list(parts(token))
        for position in (0, len(segments[index]) // 2, len(segments[index]) - 2):
            original = segments[index][position]
            changed = "B" if original != "B" else "C"
            segments[index] = segments[index][:position] + changed + segments[index][position + 1 :]
            tampered.append(".".join(segments))
            segments = list(parts(token))
    await assert_refused(node, *tampered)
    assert await node.whoami_token(token) == mallory.user_id


# -- T04 -----------------------------------------------------------------------------------------
# A project-authored list of secrets people ship (no third-party word list).
WEAK_SECRETS = [
    b"",
    b"\x00",
    b"secret",
    b"Secret",
    b"changeme",
    b"password",
    b"your-256-bit-secret",
    b"your-secret-key",
    b"jwt-secret",
    b"authstate",
    b"authstate-secret",
    b"correct horse battery staple",
    b"0" * 32,
    b"\x00" * 32,
    b"x" * 32,
    b"a" * 64,
    b"multinode-test-secret-" + b"x" * 24,
    b"test",
    b"dev",
    b"123456",
]


async def test_a_token_signed_with_a_weak_or_empty_hmac_secret_never_authenticates(
    jwt_node_any_alg: Node,
) -> None:
    """T04 (a): HS256 tokens naming the server's kid, keyed with empty, NUL and well-known
    weak secrets, are 401 whatever algorithm the server uses."""
    node = jwt_node_any_alg
    kid = node.signing_key().kid
    claims = node.claims("alice")
    if node.mode == "hybrid":
        claims["sid"] = (await node.login("alice")).token_claims()["sid"]
    header = {"alg": "HS256", "typ": "at+jwt", "kid": kid}
    await assert_refused(node, *(hmac_token(header, claims, s, "sha256") for s in WEAK_SECRETS))


async def test_no_known_weak_secret_is_the_key_of_an_hs256_server() -> None:
    """T04 (b): a dictionary run over a captured HS256 token finds no key: the server's
    secret is 32 random bytes, never a default (T76 refuses shorter ones)."""
    async with running("stateless", algorithm="HS256") as node:
        token = (await node.login("mallory")).auth
        header, payload, signature = parts(token)
        tag = base64.urlsafe_b64decode(signature + "=")
        signing_input = f"{header}.{payload}".encode()
        for weak in WEAK_SECRETS:
            assert hmac.new(weak, signing_input, "sha256").digest() != tag
        secret = node.signing_key().private_key
        assert isinstance(secret, bytes) and len(secret) >= 32
        assert secret not in WEAK_SECRETS


# -- T05 -----------------------------------------------------------------------------------------
def public_key_spellings(node: Node, jwks_text: bytes) -> list[bytes]:
    """Every representation of the server's public key an attacker could try as an HMAC key."""
    key = node.signing_key()
    public = key.public_key
    assert public is not None
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    pem = public.public_bytes(serialization.Encoding.PEM, spki)
    der = public.public_bytes(serialization.Encoding.DER, spki)
    openssh = public.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    jwk = key.public_jwk()
    served = json.loads(jwks_text)["keys"][0]
    spellings = [
        pem,
        pem.rstrip(b"\n"),
        pem.replace(b"\n", b"\r\n"),
        pem.replace(b"\n", b"\n\n").replace(b"-----\n", b"-----  \n"),
        der,
        openssh,
        openssh + b" comment",
        json.dumps(served).encode(),
        json.dumps(served, separators=(",", ":")).encode(),
        json.dumps(jwk, sort_keys=True).encode(),
        jwks_text,
        jwk["x"].encode(),
        base64.urlsafe_b64decode(jwk["x"] + "=="),
    ]
    if isinstance(public, ec.EllipticCurvePublicKey):
        point = public.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        spellings += [point, point[1:], jwk["y"].encode()]
    return spellings


@pytest.mark.parametrize("alg", ["EdDSA", "ES256"])
@pytest.mark.parametrize("mode", ["stateless", "hybrid"])
async def test_the_public_key_used_as_an_hmac_secret_never_authenticates(
    mode: str, alg: str
) -> None:
    """T05: HS256/384/512 tokens keyed with the server's public key in every spelling
    (PEM with LF, CRLF and stray spaces, DER, OpenSSH, raw point, JWK and JWKS text, the
    base64url members) are 401: the key named by kid is asymmetric, so the HS header alg
    does not match it, and no key is ever read from bytes (unit level:
    test_an_hs256_token_keyed_with_the_public_key_is_refused)."""
    async with running(mode, algorithm=alg) as node:
        jwks = await node.raw("GET", "/.well-known/jwks.json")
        claims = node.claims("alice")
        if mode == "hybrid":
            claims["sid"] = (await node.login("alice")).token_claims()["sid"]
        kid = node.signing_key().kid
        tokens = []
        for spelling in public_key_spellings(node, jwks.content):
            for alg_name, digest in (("HS256", "sha256"), ("HS384", "sha384"), ("HS512", "sha512")):
                header = {"alg": alg_name, "typ": "at+jwt", "kid": kid}
                tokens.append(hmac_token(header, claims, spelling, digest))
        await assert_refused(node, *tokens)


# -- T06 -----------------------------------------------------------------------------------------
def attacker_keys() -> list[tuple[str, dict[str, Any], Callable[[bytes], bytes]]]:
    """(alg, public JWK, sign) for attacker-made P-256, Ed25519, RSA and oct keys."""
    ec_key = ec.generate_private_key(ec.SECP256R1())
    numbers = ec_key.public_key().public_numbers()

    def sign_es256(data: bytes) -> bytes:
        r, s = decode_dss_signature(ec_key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    ed_key = ed25519.Ed25519PrivateKey.generate()
    ed_x = ed_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_numbers = rsa_key.public_key().public_numbers()
    secret = b"k" * 32
    return [
        (
            "ES256",
            {
                "kty": "EC",
                "crv": "P-256",
                "x": b64url_encode(numbers.x.to_bytes(32, "big")),
                "y": b64url_encode(numbers.y.to_bytes(32, "big")),
            },
            sign_es256,
        ),
        ("EdDSA", {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(ed_x)}, ed_key.sign),
        (
            "RS256",
            {
                "kty": "RSA",
                "n": b64url_encode(rsa_numbers.n.to_bytes(256, "big")),
                "e": "AQAB",
            },
            lambda data: rsa_key.sign(data, padding.PKCS1v15(), hashes.SHA256()),
        ),
        (
            "HS256",
            {"kty": "oct", "k": b64url_encode(secret)},
            lambda data: hmac.new(secret, data, hashlib.sha256).digest(),
        ),
    ]


def signed_with(
    header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]
) -> str:
    signing_input = f"{b64(raw_json(header))}.{b64(raw_json(claims))}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


async def test_a_key_embedded_in_the_jwk_header_is_never_trusted(jwt_node: Node) -> None:
    """T06: alice's claims signed by an attacker key whose public JWK rides in the ``jwk``
    header (with and without the server's kid; EC, Ed25519, RSA and oct keys): 401."""
    claims = jwt_node.claims("alice")
    if jwt_node.mode == "hybrid":
        claims["sid"] = (await jwt_node.login("alice")).token_claims()["sid"]
    server_kid = jwt_node.signing_key().kid
    tokens = []
    for alg, jwk, sign in attacker_keys():
        for kid in (server_kid, "attacker"):
            header = {"alg": alg, "typ": "at+jwt", "kid": kid, "jwk": {**jwk, "kid": kid}}
            tokens.append(signed_with(header, claims, sign))
    await assert_refused(jwt_node, *tokens)


# -- T07 -----------------------------------------------------------------------------------------
async def test_jku_and_x5u_are_never_fetched(jwt_node: Node) -> None:
    """T07: tokens whose ``jku``/``x5u`` point at a listener on 127.0.0.1 serving the
    attacker's JWKS (also as userinfo, ``/../``, ``#`` and ``?`` variants of our own URL)
    are 401, and the listener sees no request at all."""
    alg, jwk, sign = attacker_keys()[0]
    claims = jwt_node.claims("alice")
    with recorder({"keys": [{**jwk, "kid": "attacker", "alg": alg, "use": "sig"}]}) as listener:
        own = "https://testserver/.well-known/jwks.json"
        urls = [
            f"{listener.url}/jwks.json",
            f"https://testserver@127.0.0.1:{listener.port}/jwks.json",
            f"https://testserver/../../{listener.url}/jwks.json",
            f"{own}#{listener.url}",
            f"{own}?u={listener.url}/jwks.json",
        ]
        tokens = []
        for member in ("jku", "x5u"):
            for url in urls:
                header = {"alg": alg, "typ": "at+jwt", "kid": "attacker", member: url}
                tokens.append(signed_with(header, claims, sign))
        await assert_refused(jwt_node, *tokens)
        assert listener.requests == []


# -- T08 -----------------------------------------------------------------------------------------
def self_signed(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.DER)


async def test_a_self_signed_x5c_chain_is_never_trusted(jwt_node: Node) -> None:
    """T08: an attacker certificate in ``x5c`` (including one named like the server), the
    token signed by its key: 401."""
    claims = jwt_node.claims("alice")
    tokens = []
    for name in ("attacker", "testserver", "authstate"):
        key, der = self_signed(name)

        def sign(data: bytes, key: ec.EllipticCurvePrivateKey = key) -> bytes:
            r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")

        header = {
            "alg": "ES256",
            "typ": "at+jwt",
            "kid": jwt_node.signing_key().kid,
            "x5c": [base64.b64encode(der).decode()],
        }
        tokens.append(signed_with(header, claims, sign))
    await assert_refused(jwt_node, *tokens)


# -- T09 -----------------------------------------------------------------------------------------
_OPENED: list[str] = []
_AUDITING: list[bool] = [False]


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _AUDITING[0] and event in ("open", "os.listdir", "os.scandir", "subprocess.Popen"):
        _OPENED.append(f"{event} {args[0]!r}")


sys.addaudithook(_audit)

TRAVERSAL_KIDS = [
    "../../../../../../../dev/null",
    "/dev/null",
    "../../../../etc/hostname",
    "..\\..\\windows\\win.ini",
    "%2e%2e%2f%2e%2e%2fdev%2fnull",
    "dev/null",
]


async def test_a_kid_is_never_a_path(jwt_node: Node) -> None:
    """T09: HS256 tokens keyed with empty bytes (what /dev/null holds) whose kid is a path
    are 401, and no file is opened while they are checked (audit hook)."""
    claims = jwt_node.claims("alice")
    tokens = [
        hmac_token({"alg": "HS256", "typ": "at+jwt", "kid": kid}, claims, b"", "sha256")
        for kid in TRAVERSAL_KIDS
    ]
    _OPENED.clear()
    _AUDITING[0] = True
    try:
        await assert_refused(jwt_node, *tokens)
    finally:
        _AUDITING[0] = False
    assert [event for event in _OPENED if "null" in event or "host" in event or ".." in event] == []


# -- T10 -----------------------------------------------------------------------------------------
INJECTION_KIDS: list[Any] = [
    "x' UNION SELECT 'AAAA'-- ",
    "x' OR '1'='1",
    '{"$ne":null}',
    "*",
    "sess:*",
    "|sleep 5",
    ";sleep 5",
    "`sleep 5`",
    "$(sleep 5)",
    "a\x00b",
    "k" * 10_000,
    123,
    None,
    [],
    {},
    True,
]


async def test_a_kid_is_never_a_query_or_a_command(jwt_node: Node) -> None:
    """T10: SQL, NoSQL, glob, shell and NUL kids, a 10 000-character kid and non-string kids
    (signed with the HMAC key their injection would select) are 401 at once, no 5xx, no
    store change: a kid is only ever a key into the in-memory ring."""
    claims = jwt_node.claims("alice")
    before = await jwt_node.snapshot()
    for kid in INJECTION_KIDS:
        header = {"alg": "HS256", "typ": "at+jwt", "kid": kid}
        await assert_refused(jwt_node, hmac_token(header, claims, b"AAAA", "sha256"))
    assert await jwt_node.snapshot() == before


# -- T11 -----------------------------------------------------------------------------------------
async def test_a_kid_selects_one_key_and_that_key_alone_checks_the_signature() -> None:
    """T11: (a) signed by the old key but naming the new one; (b) no kid at all although the
    ring has two keys; (c) an unknown kid (no fetch: see T07 and test_verifier); (d) the
    right key with another algorithm that key would genuinely produce (ES256 key signing
    with SHA-384 as "ES384"): all 401."""
    for mode in ("stateless", "hybrid"):
        async with running(mode, algorithm="ES256") as node:
            old = node.signing_key()
            session = await node.login("alice")
            await node.auth.context.keys.rotate()
            new = node.signing_key()
            assert new.kid != old.kid
            claims = session.token_claims()
            private = old.private_key
            assert isinstance(private, ec.EllipticCurvePrivateKey)

            def sign_sha384(data: bytes, private: ec.EllipticCurvePrivateKey = private) -> bytes:
                return _p1363(private.sign(data, ec.ECDSA(hashes.SHA384())))

            tokens = [
                node.mint(claims, key=old, kid=new.kid),
                node.mint(claims, header={"alg": "ES256", "typ": "at+jwt"}, key=old),
                node.mint(claims, key=old, kid="unknownkid"),
                signed_with(
                    {"alg": "ES384", "typ": "at+jwt", "kid": old.kid},
                    claims,
                    sign_sha384,
                ),
            ]
            await assert_refused(node, *tokens)
            # The genuine old-key token still verifies: rotation keeps it valid (T74).
            assert await node.whoami_token(session.auth) == session.user_id


def _p1363(der: bytes) -> bytes:
    r, s = decode_dss_signature(der)
    if s > P256_N // 2:
        s = P256_N - s
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


# -- T12 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["stateless", "hybrid"])
async def test_special_and_malformed_ecdsa_signatures_never_verify(mode: str) -> None:
    """T12: on an ES256 server, the real token with its signature replaced by zeros (r=s=0,
    the psychic signature), r=0 s=1, r=s=n, r=n-1, the DER form of the real (r, s), 65 and
    63 bytes, and nothing: 401. (Wycheproof SpecialCaseEs256 and the P1363 file run at unit
    level in tests/crypto/test_wycheproof.py.)"""
    async with running(mode, algorithm="ES256") as node:
        session = await node.login("alice")
        header, payload, signature = parts(session.auth)
        raw = base64.urlsafe_b64decode(signature + "==")
        r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
        der = ec_der(r, s)

        def n2b(value: int) -> bytes:
            return value.to_bytes(32, "big")

        replacements = [
            bytes(64),
            n2b(0) + n2b(1),
            n2b(P256_N) + n2b(P256_N),
            n2b(P256_N - 1) + n2b(s),
            n2b(r) + n2b(P256_N - s),  # the high-S twin (malleated)
            der,
            b"\x00" + raw,
            raw + b"\x00",
            raw[:63],
        ]
        tokens = [f"{header}.{payload}.{b64(sig)}" for sig in replacements]
        tokens.append(f"{header}.{payload}.")
        await assert_refused(node, *tokens)
        assert await node.whoami_token(session.auth) == session.user_id


def ec_der(r: int, s: int) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    return encode_dss_signature(r, s)


# -- T13 -----------------------------------------------------------------------------------------
async def test_a_valid_signature_under_an_algorithm_not_pinned_to_the_key_never_verifies() -> None:
    """T13: correct claims signed with the server's real HS256 secret as HS384/HS512, with
    its real Ed25519 key under the RFC 9864 name "Ed25519", and its P-256 key as ES512
    (SHA-512): 401. The algorithm comes from the key, never from the header."""
    async with running("stateless", algorithm="HS256") as node:
        secret = node.signing_key().private_key
        assert isinstance(secret, bytes)
        kid = node.signing_key().kid
        claims = node.claims("alice")
        await assert_refused(
            node,
            *(
                hmac_token({"alg": alg, "typ": "at+jwt", "kid": kid}, claims, secret, digest)
                for alg, digest in (("HS384", "sha384"), ("HS512", "sha512"))
            ),
        )
        # The same claims under HS256 are accepted: the secret is right, only alg differs.
        assert await node.whoami_token(node.mint(claims)) == node.users["alice"]
    async with running("stateless", algorithm="EdDSA") as node:
        key = node.signing_key()
        assert isinstance(key.private_key, ed25519.Ed25519PrivateKey)
        header = {"alg": "Ed25519", "typ": "at+jwt", "kid": key.kid}
        await assert_refused(node, signed_with(header, node.claims("alice"), key.private_key.sign))
    async with running("stateless", algorithm="ES256") as node:
        key = node.signing_key()
        private = key.private_key
        assert isinstance(private, ec.EllipticCurvePrivateKey)
        header = {"alg": "ES512", "typ": "at+jwt", "kid": key.kid}
        token = signed_with(
            header,
            node.claims("alice"),
            lambda data: _p1363(private.sign(data, ec.ECDSA(hashes.SHA512()))),
        )
        await assert_refused(node, token)


# -- T14 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "extra",
    [
        {"crit": ["x-policy"], "x-policy": 1},
        {"crit": ["exp"]},
        {"crit": []},
        {"crit": "x"},
        {"crit": ["b64"], "b64": False},
        {"b64": False},
    ],
    ids=["unknown", "registered", "empty", "not-a-list", "b64-false", "bare-b64"],
)
async def test_crit_and_b64_headers_are_refused_even_when_correctly_signed(
    jwt_node: Node, extra: dict[str, Any]
) -> None:
    """T14: correctly signed tokens carrying ``crit`` (unknown, registered, empty, not a
    list) or RFC 7797 ``b64: false``: 401 (the header allowlist is alg, typ, kid)."""
    claims = jwt_node.claims("alice")
    if jwt_node.mode == "hybrid":
        claims["sid"] = (await jwt_node.login("alice")).token_claims()["sid"]
    assert await jwt_node.whoami_token(jwt_node.mint(claims)) == jwt_node.users["alice"]
    await assert_refused(jwt_node, jwt_node.mint(claims, **extra))


# -- T15 -----------------------------------------------------------------------------------------
async def test_other_serializations_and_token_kinds_never_authenticate(jwt_node: Node) -> None:
    """T15: (a) the JWS JSON serializations (general, flattened) of a valid token, (b) a
    compact JWE with alice's claims encrypted to the server's public key (five segments:
    never decrypted), (c) a nested JWT (``cty: JWT``) around a valid token, (d) a valid JWS
    whose payload is a whole JWT: all 401."""
    from joserfc import jwe
    from joserfc.jwk import ECKey

    session = await jwt_node.login("alice")
    header, payload, signature = parts(session.auth)
    general = {"payload": payload, "signatures": [{"protected": header, "signature": signature}]}
    flattened = {"payload": payload, "protected": header, "signature": signature}
    ec_key = ECKey.generate_key("P-256")
    encrypted = jwe.encrypt_compact(
        {"alg": "ECDH-ES+A128KW", "enc": "A128GCM"},
        json.dumps(session.token_claims()).encode(),
        ec_key,
    )
    assert encrypted.count(".") == 4
    nested = jwt_node.mint(session.auth.encode(), cty="JWT")
    whole_jwt_payload = jwt_node.mint(session.auth.encode())
    for value in (json.dumps(general), json.dumps(flattened)):
        # As the browser would send it: the cookie value in quotes, JSON inside.
        cookie = f'{AUTH_COOKIE}="{value}"'
        assert await jwt_node.whoami(cookie) is None
        assert await jwt_node.whoami(f"{AUTH_COOKIE}={value}") is None
    await assert_refused(jwt_node, encrypted, nested, whole_jwt_payload)


async def test_a_jwe_shaped_token_is_refused_before_any_key_is_touched() -> None:
    """T15 (b), grey box: five segments fail the front layer, so no decryption or key
    lookup is ever attempted (parse_compact raises before the ring is consulted)."""
    from authstate.crypto.jwt import parse_compact
    from authstate.errors import InvalidToken

    for token in ("a.b.c.d.e", "eyJhbGciOiJSU0EtT0FFUCJ9.x.y.z.w"):
        with pytest.raises(InvalidToken) as refused:
            parse_compact(token)
        assert refused.value.reason == "token has 5 segments, not 3"
