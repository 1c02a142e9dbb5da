"""Interop with joserfc (the bench/test extra's JOSE library) as an independent oracle:
a JWE we emit decrypts with joserfc given the derived content key, a JWE joserfc emits
with that key and our header verifies with us, and what joserfc emits with any other
choice it offers (zip, another enc, a 128-bit key) is refused by us."""

from __future__ import annotations

import json

import pytest
from joserfc import jwe
from joserfc.jwk import OctKey

from authstate.crypto.jwe import content_key, verify_encrypted_access_token
from authstate.crypto.keys import KeyRing, SigningKey
from authstate.errors import InvalidToken
from tests.crypto.forge import AUDIENCE, ISSUER, NOW, claims
from tests.crypto.test_jwe import issue

pytestmark = pytest.mark.filterwarnings("ignore::joserfc.errors.SecurityWarning")

# joserfc refuses dir and A256GCM by default only as "not recommended": name them.
REGISTRY = jwe.JWERegistry(algorithms=["dir", "A256GCM", "A128GCM", "A256CBC-HS512", "DEF"])


def jose_key(key: SigningKey) -> OctKey:
    return OctKey.import_key(content_key(key))


def test_a_token_we_issue_decrypts_with_joserfc(key: SigningKey) -> None:
    token = issue(key)
    decrypted = jwe.decrypt_compact(token, jose_key(key), registry=REGISTRY)
    assert decrypted.protected == {"alg": "dir", "enc": "A256GCM", "kid": key.kid, "typ": "at+jwt"}
    assert decrypted.plaintext is not None
    body = json.loads(decrypted.plaintext)
    assert (body["sub"], body["roles"], body["sid"]) == (
        "alice@example.com",
        ["admin"],
        "family-handle",
    )


def test_a_token_joserfc_emits_with_our_header_verifies_with_us(
    ring: KeyRing, key: SigningKey
) -> None:
    protected = {"alg": "dir", "enc": "A256GCM", "kid": key.kid, "typ": "at+jwt"}
    token = jwe.encrypt_compact(
        protected, json.dumps(claims(sub="bob")).encode(), jose_key(key), registry=REGISTRY
    )
    verified = verify_encrypted_access_token(token, ring, issuer=ISSUER, audience=AUDIENCE, now=NOW)
    assert verified.sub == "bob"


def test_joserfc_refuses_a_token_under_another_key(key: SigningKey, ring: KeyRing) -> None:
    """The oracle is not vacuous: it checks the tag too."""
    wrong = OctKey.import_key(bytes(32))
    with pytest.raises(Exception):  # noqa: B017 - joserfc's own error types
        jwe.decrypt_compact(issue(key), wrong, registry=REGISTRY)


@pytest.mark.parametrize(
    ("changes", "key_bytes"),
    [
        ({"zip": "DEF"}, 32),
        ({"enc": "A128GCM"}, 16),
        ({"enc": "A256CBC-HS512"}, 64),
        ({"cty": "JWT"}, 32),
    ],
    ids=repr,
)
def test_what_joserfc_emits_with_other_choices_is_refused_by_us(
    ring: KeyRing, key: SigningKey, changes: dict[str, str], key_bytes: int
) -> None:
    material = (content_key(key) * 2)[:key_bytes]
    protected = {"alg": "dir", "enc": "A256GCM", "kid": key.kid, "typ": "at+jwt", **changes}
    token = jwe.encrypt_compact(
        protected, json.dumps(claims()).encode(), OctKey.import_key(material), registry=REGISTRY
    )
    assert jwe.decrypt_compact(token, OctKey.import_key(material), registry=REGISTRY).plaintext
    with pytest.raises(InvalidToken):
        verify_encrypted_access_token(token, ring, issuer=ISSUER, audience=AUDIENCE, now=NOW)
