"""J. JWKS and key rotation (T73-T77): the JWKS publishes public signing keys only; a new
key signs at once and reaches every node through the bus; an old key verifies until its
last token expired and then leaves; weak keys never start; the JWKS is not steerable.

T75 (key-set hygiene when loading JWKs) is unit-tested where the loading happens:
tests/crypto/test_keys.py (duplicate kid, mixed rings, private members, use/key_ops,
curves), tests/crypto/test_wycheproof.py (every json_web_key_test verdict) and
tests/test_verifier.py (whole documents refused).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path

import httpx
import pytest

from authstate import AuthState, ConfigurationError, FrozenClock, Settings
from authstate.crypto.sealing import Sealer
from authstate.stores.base import StoredKey
from authstate.stores.memory import MemoryStore
from tests.cli.serve_process import clean_env, cookie_header, run_cli, serve
from tests.security.harness import LOG, PASSWORD, Node, note_secret, recorder, running

pytestmark = pytest.mark.anyio

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


# -- T73 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "HS256"])
async def test_the_jwks_publishes_public_signing_keys_only(alg: str) -> None:
    """T73: a JSON object with a ``keys`` list; each key has kty, kid, alg and use "sig",
    no private member and never an oct key (an HS256 server publishes nothing); kids are
    unique; EC keys are P-256; the cache lifetime is shorter than the rotation overlap."""
    async with running("hybrid", algorithm=alg) as node:
        await node.auth.context.keys.rotate()
        response = await node.raw("GET", "/.well-known/jwks.json")
        assert response.status_code == 200
        document = response.json()
        assert set(document) == {"keys"}
        keys = document["keys"]
        if alg == "HS256":
            assert keys == []
            return
        assert len(keys) == 2 and len({k["kid"] for k in keys}) == 2
        for key in keys:
            assert {"kty", "kid", "alg", "use"} <= set(key)
            assert key["use"] == "sig" and key["alg"] == alg
            assert not PRIVATE_MEMBERS & set(key)
            assert key["kty"] in ("OKP", "EC")
            if key["kty"] == "EC":
                assert key["crv"] == "P-256"
        max_age = int(response.headers["cache-control"].split("max-age=")[1].split(",")[0])
        settings = node.auth.settings
        assert max_age < settings.access_ttl_seconds + settings.leeway_seconds


# -- T74 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["stateless", "hybrid"])
async def test_a_rotated_key_verifies_until_its_last_token_expires_then_leaves(mode: str) -> None:
    """T74: a token of k1; rotate: new tokens (and refreshes) carry k2 and the JWKS lists
    both; the k1 token works to its exp + leeway; k1 stays in the JWKS until every token it
    signed has expired, then leaves it and ``KeyManager.purge_retired`` deletes it; a
    correctly signed k1 token with a far exp (grey box) is then 401."""
    async with running(mode) as node:
        k1 = node.signing_key()
        old = await node.login("alice")
        old_token = old.auth
        node.clock.advance(100)
        await node.auth.context.keys.rotate()
        k2 = node.signing_key()
        assert k2.kid != k1.kid
        fresh = await node.login("alice")
        assert json.loads(base64.urlsafe_b64decode(fresh.auth.split(".")[0] + "=="))["kid"] == (
            k2.kid
        )
        if mode == "hybrid":
            refreshed = await old.refresh_now()
            assert refreshed.status_code == 200
            assert old.token_claims() and old.auth.split(".")[0] == fresh.auth.split(".")[0]
        kids = {k["kid"] for k in (await node.raw("GET", "/.well-known/jwks.json")).json()["keys"]}
        assert kids == {k1.kid, k2.kid}
        node.clock.advance(900 - 100 + 29)  # the old token's exp + 29 s of leeway
        assert await node.whoami_token(old_token) is not None
        node.clock.advance(2)
        assert await node.whoami_token(old_token) is None
        retire_after = 100 + 900 + 30  # rotation time + access TTL + leeway, from login
        node.clock.set(1_800_000_000 + retire_after - 1)
        assert await node.auth.context.keys.purge_retired() == 0
        node.clock.set(1_800_000_000 + retire_after + 1)
        kids = {k["kid"] for k in (await node.raw("GET", "/.well-known/jwks.json")).json()["keys"]}
        assert kids == {k2.kid}
        assert await node.auth.context.keys.purge_retired() == 1
        await node.auth.context.keys.load()
        assert [k.kid for k in await node.store.load_keys()] == [k2.kid]
        late = node.mint(await node.live_claims("alice", exp=int(node.clock.now()) + 3_600), key=k1)
        assert await node.whoami_token(late) is None
        assert await node.whoami_token(node.mint(await node.live_claims("alice"))) is not None


def test_rotating_from_the_cli_reaches_a_running_server_through_the_bus(
    tmp_path: Path,
) -> None:
    """T74/issue 5: ``authstate keys rotate`` on the SQLite store of a running ``authstate
    serve`` (another process): the server signs new logins with the new kid within the
    bus's polling bound, publishes both keys, and the token signed before still works. The
    server's log is added to the catalogue-wide log check."""
    db = tmp_path / "auth.db"
    store = f"sqlite:///{db}"
    added = run_cli("users", "add", "alice", "--password-stdin", "--store", store, stdin=PASSWORD)
    assert added.returncode == 0, added.stderr
    with serve(tmp_path, "--mode", "stateless", "--store", store) as server:
        before = httpx.post(
            f"{server.url}/auth/login", json={"username": "alice", "password": PASSWORD}
        )
        assert before.status_code == 200
        old_cookie = cookie_header(before)
        note_secret(*(part.split("=", 1)[1] for part in old_cookie.split("; ")))
        old_kid = kid_of(old_cookie)
        rotated = run_cli("keys", "rotate", "--store", store, env=clean_env())
        assert rotated.returncode == 0, rotated.stderr
        deadline = time.monotonic() + 10
        new_kid = old_kid
        while new_kid == old_kid and time.monotonic() < deadline:
            time.sleep(0.1)
            login = httpx.post(
                f"{server.url}/auth/login", json={"username": "alice", "password": PASSWORD}
            )
            cookie = cookie_header(login)
            note_secret(*(part.split("=", 1)[1] for part in cookie.split("; ")))
            new_kid = kid_of(cookie)
        assert new_kid != old_kid, "the running server never picked up the rotated key"
        jwks = httpx.get(f"{server.url}/.well-known/jwks.json").json()
        assert {k["kid"] for k in jwks["keys"]} == {old_kid, new_kid}
        me = httpx.get(f"{server.url}/auth/me", headers={"cookie": old_cookie})
        assert me.status_code == 200
        server.stop()
    LOG.extend(server.stderr.splitlines())
    assert "Traceback" not in server.stderr


def kid_of(cookie: str) -> str:
    token = next(p for p in cookie.split("; ") if p.startswith("__Host-authstate="))
    header = token.split("=", 1)[1].split(".")[0]
    kid: str = json.loads(base64.urlsafe_b64decode(header + "=="))["kid"]
    return kid


# -- T76 -----------------------------------------------------------------------------------------
MASTER = b"m" * 32


def _stored(kid: str, alg: str, private: bytes) -> StoredKey:
    aad = f"authstate-key\x00{kid}\x00{alg}".encode()  # key_storage binds sealed keys so
    return StoredKey(kid, alg, Sealer(MASTER).seal(private, aad=aad), "", 1_800_000_000.0)


@pytest.mark.parametrize("length", [0, 1, 16, 31])
async def test_a_short_hmac_signing_key_stops_the_start(length: int) -> None:
    """T76: a stored HS256 key of 0, 1, 16 or 31 bytes (shared store, same secret) makes
    the node refuse to start with a clear error, rather than sign with it."""
    store = MemoryStore(clock=FrozenClock())
    await store.open()
    await store.save_key(_stored("weak", "HS256", b"k" * length))
    settings = Settings.from_env({}, store="memory://", algorithm="HS256", secret=MASTER)
    auth = AuthState(settings, store=store, clock=FrozenClock())
    with pytest.raises(ConfigurationError, match="at least 32 bytes"):
        await auth.start()


async def test_a_32_byte_hmac_key_and_the_asymmetric_defaults_start() -> None:
    """T76: 32 random bytes (HS256), P-256 (ES256) and Ed25519 (EdDSA) start fine."""
    store = MemoryStore(clock=FrozenClock())
    await store.open()
    await store.save_key(_stored("good", "HS256", b"k" * 32))
    settings = Settings.from_env({}, store="memory://", algorithm="HS256", secret=MASTER)
    async with AuthState(settings, store=store, clock=FrozenClock()) as auth:
        assert auth.context.keys.ring.signing_key().kid == "good"
    for alg in ("ES256", "EdDSA"):
        async with running("stateless", algorithm=alg) as node:
            assert node.signing_key().alg == alg


@pytest.mark.parametrize(
    "overrides",
    [
        {"algorithm": "RS256"},
        {"algorithm": "HS384"},
        {"algorithm": "none"},
        {"secret": b"short secret"},
        {"secret": b"x" * 31},
    ],
    ids=["rsa", "hs384", "none", "short-master", "31-byte-master"],
)
def test_weak_or_unsupported_key_settings_are_refused(overrides: dict[str, object]) -> None:
    """T76: RSA (any size: RS256 is not offered, so no 1024-bit or e=1 key can exist),
    other algorithms, ``none`` and a master secret under 32 bytes stop the configuration
    with a one-line error naming the setting."""
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env({}, **overrides)
    assert str(refused.value).startswith("AUTHSTATE_")
    assert "\n" not in str(refused.value)


def test_the_server_refuses_to_start_with_a_weak_secret(tmp_path: Path) -> None:
    """T76 (the command): ``authstate keys list`` with a 16-byte AUTHSTATE_SECRET exits 1
    with one line and no traceback; the secret is not echoed."""
    result = run_cli(
        "keys",
        "list",
        "--store",
        f"sqlite:///{tmp_path / 'a.db'}",
        env=clean_env(AUTHSTATE_SECRET="sixteen-byte-key"),
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "AUTHSTATE_SECRET" in result.stderr and "sixteen-byte-key" not in result.stderr


# -- T77 -----------------------------------------------------------------------------------------
async def test_the_jwks_is_the_same_document_whatever_the_request_says(jwt_node: Node) -> None:
    """T77: odd Host, X-Forwarded-Host/Proto, and query parameters (``?kid=../../``,
    ``?url=`` pointing at a listener) get byte-identical documents, reflect nothing, and
    make no outbound request."""
    with recorder() as listener:
        plain = await jwt_node.raw("GET", "/.well-known/jwks.json")
        variants = [
            await jwt_node.raw(
                "GET",
                "/.well-known/jwks.json",
                headers={"x-forwarded-host": "evil.test", "x-forwarded-proto": "http"},
            ),
            await jwt_node.raw(
                "GET", "/.well-known/jwks.json", params={"kid": "../../", "url": listener.url}
            ),
            await jwt_node.raw(
                "GET", "/.well-known/jwks.json", params={"jku": f"{listener.url}/x.json"}
            ),
        ]
        await asyncio.sleep(0.1)
        assert listener.requests == []
    for response in variants:
        assert response.status_code == 200
        assert response.content == plain.content
        assert b"evil" not in response.content and b"127.0.0.1" not in response.content
    # A Host the server does not answer for gets 400 (AUTHSTATE_ALLOWED_HOSTS), reflecting nothing.
    foreign = await jwt_node.raw("GET", "/.well-known/jwks.json", headers={"host": "evil.test"})
    assert foreign.status_code == 400 and b"evil" not in foreign.content
