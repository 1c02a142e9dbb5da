"""B. Encrypted tokens (J01-J06, ``AUTHSTATE_TOKEN_FORMAT=jwe``): tampering with any part of
a JWE, choosing another ``alg``/``enc``, or presenting one format where the other is
expected never authenticates anyone, and is the same 401 as every other bad token.

Black-box cases start from mallory's own cookie over HTTP, in both JWT modes; grey-box
cases hold the node's content key (derived from its ring) and forge with it, so that only
the rule under test can refuse them. The unit-level rules live in
``tests/crypto/test_jwe.py`` and are not repeated.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest

from authstate import Verifier
from authstate.crypto.jwe import content_key
from authstate.crypto.jwt import issue_access_token
from authstate.errors import InvalidToken
from tests.crypto.forge import b64
from tests.crypto.jwe_forge import forge_jwe, jwe_header
from tests.security.harness import JWT_MODES, Node, note_secret, running

pytestmark = pytest.mark.anyio


@pytest.fixture(params=JWT_MODES)
async def node(request: pytest.FixtureRequest) -> AsyncIterator[Node]:
    async with running(request.param, token_format="jwe") as started:
        for key in started.auth.context.keys.ring.keys:
            if key.can_sign:  # H7: the content key must never reach a log either
                note_secret(b64(content_key(key)), content_key(key).hex())
        yield started


def flipped(segment: str, position: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    raw[position] ^= 0x80
    return b64(bytes(raw))


def forged(node: Node, user: str, **header_changes: Any) -> str:
    """A JWE for ``user`` encrypted with the node's real content key (grey box)."""
    key = node.signing_key()
    claims = node.claims(user)
    if node.mode == "hybrid":  # a hybrid node wants a refresh family; mallory's will do
        claims["sid"] = "unused-handle"
    return forge_jwe(jwe_header(key, **header_changes), claims, key)


# -- J01 -----------------------------------------------------------------------------------------
async def test_j01_a_bit_flipped_in_any_segment_of_a_real_jwe_is_refused(node: Node) -> None:
    """Mallory's own cookie, one bit changed in the header, IV, ciphertext or tag (first
    and last byte of each), or a non-empty encrypted key: all the one 401."""
    session = await node.login("mallory")
    assert await node.whoami_token(session.auth) == node.users["mallory"]
    parts = session.auth.split(".")
    assert len(parts) == 5
    for index in (0, 2, 3, 4):
        for position in (0, -1):
            changed = list(parts)
            changed[index] = flipped(parts[index], position)
            assert await node.whoami_token(".".join(changed)) is None, (index, position)
    assert await node.whoami_token(".".join([parts[0], "AAAA", *parts[2:]])) is None
    # The genuine token still works: the refusals did not revoke or poison the cache.
    assert await node.whoami_token(session.auth) == node.users["mallory"]


# -- J02 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "changes",
    [
        {"alg": "none"},
        {"alg": "A256KW"},
        {"alg": "ECDH-ES"},
        {"enc": "A128GCM"},
        {"enc": "A256CBC-HS512"},
        {"zip": "DEF"},
        {"cty": "JWT"},
        {"crit": ["exp"]},
    ],
    ids=repr,
)
async def test_j02_alg_and_enc_confusion_is_refused_even_with_the_real_key(
    node: Node, changes: dict[str, Any]
) -> None:
    """Grey box: the same forge with our exact header makes alice (so the forge is right);
    any other ``alg``, ``enc`` or an extra header member is refused."""
    assert await node.whoami_token(forged(node, "alice")) == node.users["alice"]
    assert await node.whoami_token(forged(node, "alice", **changes)) is None


# -- J03 -----------------------------------------------------------------------------------------
async def test_j03_a_jws_signed_with_the_nodes_own_key_is_refused_by_a_jwe_node(
    node: Node,
) -> None:
    """The format is pinned by the node's setting, never chosen by the token: a JWS the
    same ring signed for alice (valid on a ``jws`` node) is refused here."""
    settings = node.auth.settings
    jws, _ = issue_access_token(
        node.signing_key(),
        issuer=settings.issuer,
        audience=settings.audience,
        subject=node.users["alice"],
        roles=["staff"],
        now=node.clock.now(),
        ttl_seconds=60,
        handle="unused-handle" if node.mode == "hybrid" else None,
    )
    assert await node.whoami_token(jws) is None


async def test_j03_a_jwe_is_refused_by_a_jws_node() -> None:
    async with running("stateless", token_format="jwe") as jwe_node:
        token = (await jwe_node.login("alice")).auth
    async with running("stateless") as jws_node:
        assert await jws_node.whoami_token(token) is None


# -- J04 -----------------------------------------------------------------------------------------
async def test_j04_a_kid_of_another_ring_or_a_respelled_header_is_refused(node: Node) -> None:
    """A JWE under a key this node never had, and our own token with its header JSON
    spelled differently (the header segment is the AAD)."""
    other_key = bytes(32)
    stranger = forge_jwe(
        jwe_header(node.signing_key(), kid="A" * 22), node.claims("alice"), other_key
    )
    assert await node.whoami_token(stranger) is None
    session = await node.login("mallory")
    parts = session.auth.split(".")
    respelled = base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)).replace(b",", b", ")
    assert await node.whoami_token(".".join([b64(respelled), *parts[1:]])) is None


# -- J05 -----------------------------------------------------------------------------------------
async def test_j05_a_resource_service_with_only_the_jwks_cannot_read_a_jwe(node: Node) -> None:
    """The JWKS holds public signing keys only; the Verifier refuses a JWE before any fetch."""
    jwks = node.auth.jwks()
    assert all("k" not in key and "d" not in key for key in jwks["keys"])

    async def fetch() -> dict[str, Any]:
        return dict(jwks)

    verifier = Verifier(fetch, issuer="authstate", audience="authstate", clock=node.clock)
    session = await node.login("alice")
    with pytest.raises(InvalidToken):
        await verifier.verify(session.auth)


# -- J06 -----------------------------------------------------------------------------------------
async def test_j06_logout_revokes_a_cached_jwe(node: Node) -> None:
    """Revocation and the verified-token cache work as for a JWS: a JWE served from the
    cache is refused once logged out."""
    session = await node.login("mallory")
    token = session.auth
    for _ in range(3):  # first sight, then cache hits
        assert await node.whoami_token(token) == node.users["mallory"]
    response = await session.post("/auth/logout")
    assert response.status_code in (200, 204), response.text
    assert await node.whoami_token(token) is None
