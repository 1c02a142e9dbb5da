"""``authstate.Verifier``: another service verifying our tokens from the published JWKS.

The JWKS comes from the reference app itself (through httpx's ASGI transport, or a real
listener on 127.0.0.1), so the verifier is tested against what the server really serves.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from authstate import (
    BadRequest,
    ConfigurationError,
    FrozenClock,
    InvalidToken,
    StoreUnavailable,
    Verifier,
)
from authstate.cookies import AUTH_COOKIE
from authstate.crypto.keys import generate_key
from authstate.stores import open_store
from tests.crypto.forge import forge
from tests.security.harness import Node, recorder, running

pytestmark = pytest.mark.anyio

JWKS_URL = "https://testserver/.well-known/jwks.json"


class CountingApp:
    """Wraps an ASGI app and counts the JWKS requests it serves."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.jwks_requests = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/.well-known/jwks.json":
            self.jwks_requests += 1
        await self.app(scope, receive, send)


def verifier_for(node: Node, counting: CountingApp, **options: Any) -> Verifier:
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=counting), base_url="https://testserver"
    )
    return Verifier.from_jwks(JWKS_URL, client=client, clock=node.clock, **options)


@pytest.fixture(params=[("stateless", "EdDSA"), ("hybrid", "ES256")], ids=lambda p: "-".join(p))
async def node(request: pytest.FixtureRequest) -> AsyncIterator[Node]:
    mode, alg = request.param
    async with running(mode, algorithm=alg) as started:
        yield started


def random_kid_token(node: Node) -> str:
    """A well-formed token under a kid nobody published, signed by an unknown key."""
    attacker = generate_key(node.signing_key().alg, now=node.clock.now())
    header = {"alg": attacker.alg, "typ": "at+jwt", "kid": secrets.token_urlsafe(12)}
    return forge(header, node.claims("alice"), attacker)


async def test_a_verifier_accepts_the_tokens_the_server_issues(node: Node) -> None:
    counting = CountingApp(node.app)
    verifier = verifier_for(node, counting)
    session = await node.login("alice")
    claims = await verifier.verify(session.auth)
    assert claims.sub == node.users["alice"]
    assert claims.kid == node.signing_key().kid
    assert verifier.kids == {node.signing_key().kid}


async def test_tokens_for_another_issuer_or_audience_are_refused(node: Node) -> None:
    session = await node.login("alice")
    for options in ({"issuer": "someone-else"}, {"audience": "another-service"}):
        verifier = verifier_for(node, CountingApp(node.app), **options)
        with pytest.raises(InvalidToken):
            await verifier.verify(session.auth)


async def test_a_flood_of_unknown_kids_fetches_the_jwks_at_most_once_per_interval(
    node: Node,
) -> None:
    """Security T11 (c) / issue 5: tokens with random kids cannot drive fetches."""
    counting = CountingApp(node.app)
    verifier = verifier_for(node, counting, min_refetch_interval=30)
    session = await node.login("alice")
    await verifier.verify(session.auth)
    assert counting.jwks_requests == 1
    for _ in range(200):
        with pytest.raises(InvalidToken):
            await verifier.verify(random_kid_token(node))
    results = await asyncio.gather(
        *(verifier.verify(random_kid_token(node)) for _ in range(100)), return_exceptions=True
    )
    assert all(isinstance(result, InvalidToken) for result in results)
    assert counting.jwks_requests == 1  # the start was less than an interval ago
    node.clock.advance(31)
    for _ in range(50):
        with pytest.raises(InvalidToken):
            await verifier.verify(random_kid_token(node))
    assert counting.jwks_requests == 2  # one refetch for the first unknown kid, no more
    node.clock.advance(31)
    await asyncio.gather(
        *(verifier.verify(random_kid_token(node)) for _ in range(100)), return_exceptions=True
    )
    assert counting.jwks_requests == 3
    assert verifier.fetch_count == 3
    assert (await verifier.verify(session.auth)).sub == node.users["alice"]


async def test_a_key_rotated_on_the_server_is_learned_with_one_refetch(node: Node) -> None:
    counting = CountingApp(node.app)
    verifier = verifier_for(node, counting)
    old_token = (await node.login("alice")).auth
    await verifier.verify(old_token)
    node.clock.advance(11)  # the default refetch interval is 10 s
    await node.auth.context.keys.rotate()
    new_token = (await node.login("alice")).auth
    assert (await verifier.verify(new_token)).kid == node.signing_key().kid
    assert counting.jwks_requests == 2
    assert (await verifier.verify(old_token)).sub == node.users["alice"]
    assert counting.jwks_requests == 2


async def test_a_retired_key_leaves_the_verifier_once_its_tokens_have_expired(
    node: Node,
) -> None:
    """Security T74 for the verifier: after the server purged the old key, the next cache
    refresh drops it, and a (grey-box) far-future token signed by it is refused."""
    counting = CountingApp(node.app)
    verifier = verifier_for(node, counting, cache_seconds=60)
    old_key = node.signing_key()
    await verifier.verify((await node.login("alice")).auth)
    await node.auth.context.keys.rotate()
    node.clock.advance(node.auth.settings.access_ttl_seconds + 31)
    assert await node.auth.context.keys.purge_retired() == 1
    await node.auth.context.keys.load()
    late = node.mint(node.claims("alice", exp=int(node.clock.now()) + 3600), key=old_key)
    with pytest.raises(InvalidToken):
        await verifier.verify(late)
    assert old_key.kid not in verifier.kids


async def test_jku_x5u_and_embedded_keys_are_never_followed(node: Node) -> None:
    """Security T06/T07 for the verifier: the listener the headers point at sees nothing,
    and such tokens do not even trigger a JWKS refetch."""
    counting = CountingApp(node.app)
    verifier = verifier_for(node, counting)
    await verifier.verify((await node.login("alice")).auth)
    attacker = generate_key(node.signing_key().alg, now=node.clock.now())
    with recorder({"keys": [attacker.public_jwk()]}) as listener:
        for member, value in (
            ("jku", f"{listener.url}/jwks.json"),
            ("x5u", f"{listener.url}/cert.pem"),
            ("jwk", attacker.public_jwk()),
        ):
            header = {"alg": attacker.alg, "typ": "at+jwt", "kid": attacker.kid, member: value}
            with pytest.raises(InvalidToken):
                await verifier.verify(forge(header, node.claims("alice"), attacker))
        assert listener.requests == []
    assert counting.jwks_requests == 1


async def test_with_the_store_the_verifier_follows_logouts_across_processes(
    tmp_path: Path,
) -> None:
    """Given the auth server's store, a logged-out token (and every token of a user who
    logged out everywhere) stops verifying within the bus's bound; without it, only expiry
    ends a token (the documented limit)."""
    url = f"sqlite:///{tmp_path / 'auth.db'}"
    async with running("hybrid", url) as node:
        store = await open_store(url, clock=node.clock)
        counting = CountingApp(node.app)
        with_store = verifier_for(node, counting, store=store)
        without_store = verifier_for(node, counting)
        first = await node.login("alice")
        second = await node.login("alice")
        first_token, second_token = first.auth, second.auth
        async with with_store:
            await with_store.verify(first_token)
            assert (await first.post("/auth/logout")).status_code == 204
            await until_refused(with_store, first_token)
            await with_store.verify(second_token)
            assert (await second.post("/auth/logout-all")).status_code == 204
            await until_refused(with_store, second_token)
        assert (await without_store.verify(first_token)).sub == node.users["alice"]


async def until_refused(verifier: Verifier, token: str, within: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        try:
            await verifier.verify(token)
        except InvalidToken:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the revocation did not reach the verifier")


async def test_a_verifier_given_a_store_never_verifies_before_it_follows_it(node: Node) -> None:
    """No start(): the first verify loads the revocation state first (fail closed), and a
    store that cannot be opened is 503, not a pass."""

    class BrokenStore:
        async def open(self) -> None:
            raise StoreUnavailable(reason="down")

    verifier = verifier_for(node, CountingApp(node.app), store=BrokenStore())
    with pytest.raises(StoreUnavailable):
        await verifier.verify((await node.login("alice")).auth)


async def test_a_failing_jwks_keeps_the_known_keys_and_is_not_hammered(node: Node) -> None:
    documents: list[Mapping[str, Any] | Exception] = [node.auth.jwks()]
    calls = 0

    async def fetch() -> Mapping[str, Any]:
        nonlocal calls
        calls += 1
        outcome = documents[0] if calls == 1 else StoreUnavailable(reason="server down")
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    verifier = Verifier(fetch, issuer="authstate", audience="authstate", clock=node.clock)
    session = await node.login("alice")
    await verifier.verify(session.auth)
    node.clock.advance(11)
    for _ in range(50):
        with pytest.raises(InvalidToken):
            await verifier.verify(random_kid_token(node))
    assert calls == 2
    assert (await verifier.verify(session.auth)).sub == node.users["alice"]
    node.clock.advance(301)  # the cache is stale and the server still down: keep the keys
    assert (await verifier.verify(session.auth)).sub == node.users["alice"]
    assert calls == 3


async def test_no_key_set_at_all_is_503_and_retried_once_per_interval(node: Node) -> None:
    calls = 0

    async def fetch() -> Mapping[str, Any]:
        nonlocal calls
        calls += 1
        raise StoreUnavailable(reason="server down")

    verifier = Verifier(fetch, issuer="authstate", audience="authstate", clock=node.clock)
    token = (await node.login("alice")).auth
    for _ in range(20):
        with pytest.raises(StoreUnavailable):
            await verifier.verify(token)
    assert calls == 1
    node.clock.advance(11)
    with pytest.raises(StoreUnavailable):
        await verifier.verify(token)
    assert calls == 2


async def test_garbage_is_refused_before_any_fetch() -> None:
    calls = 0

    async def fetch() -> Mapping[str, Any]:
        nonlocal calls
        calls += 1
        return {"keys": []}

    verifier = Verifier(fetch, issuer="authstate", audience="authstate", clock=FrozenClock())
    for garbage in ("", "a.b", "x" * 5000, "e30.e30.e30"):
        with pytest.raises(InvalidToken):
            await verifier.verify(garbage)
    assert calls == 0


def _jwk(alg: str = "EdDSA") -> dict[str, Any]:
    return dict(generate_key(alg, now=0).public_jwk())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "document",
    [
        {"keys": [{**_jwk(), "d": "AAAA"}]},
        {"keys": [{"kty": "oct", "k": "A" * 43, "alg": "HS256", "kid": "k"}]},
        {"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB", "alg": "RS256", "kid": "r"}]},
        {"keys": [{**_jwk(), "kid": "same"}, {**_jwk(), "kid": "same"}]},
        {"keys": [{**_jwk(), "use": "enc"}]},
        {"keys": [{**_jwk(), "key_ops": ["encrypt"]}]},
        {"keys": [{**_jwk("ES256"), "crv": "P-384"}]},
        {"keys": [{**_jwk(), "alg": "ES256"}]},
        {"keys": "not a list"},
        {"keys": []},
        {"keys": ["not an object"]},
    ],
    ids=[
        "private-member",
        "oct",
        "rsa",
        "duplicate-kid",
        "use-enc",
        "key-ops",
        "crv-mismatch",
        "alg-kty-mismatch",
        "not-a-list",
        "empty-hs256-server",
        "not-an-object",
    ],
)
async def test_an_unusable_key_set_is_refused_whole(document: dict[str, Any]) -> None:
    """Security T75/T76 for the verifier: private or symmetric material, unsupported key
    types (RSA), duplicate kids, wrong use/key_ops/curve: the document is refused."""

    async def fetch() -> Mapping[str, Any]:
        return document

    verifier = Verifier(fetch, issuer="authstate", audience="authstate", clock=FrozenClock())
    with pytest.raises(ConfigurationError):
        await verifier.start()


@pytest.mark.parametrize(
    "url",
    [
        "http://auth.example.com/.well-known/jwks.json",
        "ftp://auth.example.com/jwks",
        "file:///etc/passwd",
        "https:///nohost",
        "jwks.json",
    ],
)
def test_a_jwks_url_an_attacker_on_the_path_could_answer_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError):
        Verifier.from_jwks(url)


@pytest.mark.parametrize(
    "url",
    ["https://auth.example.com/jwks", "http://127.0.0.1:8000/jwks", "http://localhost/x"],
)
def test_https_and_loopback_jwks_urls_are_accepted(url: str) -> None:
    Verifier.from_jwks(url)
    Verifier.from_jwks(url.replace("https", "http"), unsafe_allow_http=True)


async def test_a_real_jwks_server_on_loopback_is_fetched_with_bounds(node: Node) -> None:
    """The default httpx client against a real listener: the document verifies tokens; a
    redirect is not followed; a body over 64 KiB is not read."""
    session = await node.login("alice")
    with recorder(node.auth.jwks()) as listener:
        verifier = Verifier.from_jwks(f"{listener.url}/jwks.json", clock=node.clock)
        assert (await verifier.verify(session.auth)).sub == node.users["alice"]
        assert listener.requests == ["GET /jwks.json"]
    with recorder(
        node.auth.jwks(), status=302, headers={"Location": "https://evil.example/jwks"}
    ) as listener:
        verifier = Verifier.from_jwks(f"{listener.url}/jwks.json", clock=node.clock)
        with pytest.raises(StoreUnavailable):
            await verifier.start()
        assert listener.requests == ["GET /jwks.json"]
    padded = {**node.auth.jwks(), "padding": "x" * 70_000}
    with recorder(padded) as listener:
        verifier = Verifier.from_jwks(f"{listener.url}/jwks.json", clock=node.clock)
        with pytest.raises(ConfigurationError, match="larger than"):
            await verifier.start()
    with recorder(b'{"keys": [] , "keys": []}') as listener:
        verifier = Verifier.from_jwks(f"{listener.url}/jwks.json", clock=node.clock)
        with pytest.raises(ConfigurationError, match="duplicate"):
            await verifier.start()


async def test_max_age_refuses_old_tokens_whatever_their_exp(node: Node) -> None:
    counting = CountingApp(node.app)
    verifier = verifier_for(node, counting, max_age=60)
    now = int(node.clock.now())
    old = node.mint(node.claims("alice", iat=now - 3600, nbf=now - 3600, exp=now + 3600))
    with pytest.raises(InvalidToken):
        await verifier.verify(old)
    fresh = node.mint(node.claims("alice"))
    assert (await verifier.verify(fresh)).sub == node.users["alice"]


def test_settings_that_would_disable_checks_are_refused() -> None:
    async def fetch() -> Mapping[str, Any]:  # pragma: no cover - never called
        return {}

    for options in (
        {"issuer": ""},
        {"audience": ""},
        {"min_refetch_interval": 0},
        {"cache_seconds": -1},
        {"leeway": -5},
    ):
        arguments: dict[str, Any] = {"issuer": "authstate", "audience": "authstate", **options}
        with pytest.raises(ConfigurationError):
            Verifier(fetch, **arguments)


# -- red team F1: deep nesting ------------------------------------------------------------------
def f1_token(kid: str, alg: str, depth: int) -> str:
    """The red team's token: a real kid, claims nested ``depth`` levels around one
    ``\\u`` escape, a signature of zero bytes; anyone can build it."""
    head = {"alg": alg, "typ": "at+jwt", "kid": kid}
    body = b'{"a":' + b"[" * depth + b'"\\u0041"' + b"]" * depth + b"}"
    return forge(head, body, None, signature=b"\x00" * 64)


async def test_a_deeply_nested_token_is_invalid_token_never_recursion_error(node: Node) -> None:
    """T81, F1: Verifier.verify raised RecursionError (450-900 levels) where every refusal must
    be InvalidToken; a resource service would answer 500. Every depth, and the verifier
    still accepts the real token afterwards."""
    key = node.signing_key()
    session = await node.login("alice")
    counting = CountingApp(node.app)
    verifier = verifier_for(node, counting)
    for depth in (33, 300, 450, 600, 750, 900, 1000, 1300):
        with pytest.raises(InvalidToken):
            await verifier.verify(f1_token(key.kid, key.alg, depth))
    assert (await verifier.verify(session.auth)).sub == node.users["alice"]


@pytest.mark.parametrize("depth", [40, 600, 900, 20_000])
async def test_a_deeply_nested_jwks_is_refused_and_the_known_keys_kept(
    node: Node, depth: int
) -> None:
    """T83, F1 for key sets: a JWKS document nested around a ``\\u`` escape (the auth server
    compromised or impersonated on the path) is ConfigurationError at start, never
    RecursionError; a verifier that already has keys keeps them."""
    deep = b'{"keys":[],"x":' + b"[" * depth + b'"\\u0041"' + b"]" * depth + b"}"
    with recorder(deep) as listener:
        verifier = Verifier.from_jwks(f"{listener.url}/jwks.json", clock=node.clock)
        with pytest.raises(ConfigurationError, match="nested too deeply"):
            await verifier.start()
    with recorder(node.auth.jwks()) as listener:
        verifier = Verifier.from_jwks(f"{listener.url}/jwks.json", clock=node.clock)
        await verifier.start()
        listener.body = deep
        node.clock.advance(3600)  # past the cache: the next verify refetches
        session = await node.login("alice")
        assert (await verifier.verify(session.auth)).sub == node.users["alice"]
        assert listener.requests == ["GET /jwks.json"] * 2


# -- verify_request: the Bearer header or the auth cookie -----------------------------------------
async def test_verify_request_reads_the_bearer_header_or_the_auth_cookie(node: Node) -> None:
    verifier = verifier_for(node, CountingApp(node.app))
    alice = await node.login("alice")
    mallory = await node.login("mallory")
    by_header = await verifier.verify_request([("Authorization", f"Bearer {alice.auth}")])
    by_cookie = await verifier.verify_request([("cookie", f"a=1; {AUTH_COOKIE}={alice.auth}")])
    assert by_header.sub == by_cookie.sub == node.users["alice"]
    with pytest.raises(BadRequest):
        await verifier.verify_request(
            [("cookie", f"{AUTH_COOKIE}={alice.auth}"), ("authorization", f"Bearer {mallory.auth}")]
        )
    refused = [
        [],
        [("authorization", "Basic eA==")],
        [("authorization", f"Bearer  {alice.auth}")],
        [("cookie", f"{AUTH_COOKIE}={alice.auth}; {AUTH_COOKIE}={mallory.auth}")],
        [("authorization", f"Bearer {alice.auth}"), ("authorization", f"Bearer {alice.auth}")],
    ]
    for headers in refused:
        with pytest.raises(InvalidToken):
            await verifier.verify_request(headers)
    await alice.client.aclose()
    await mallory.client.aclose()
