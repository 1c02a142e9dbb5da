"""Property-based fuzzing (issue 5, item 2) of the four places attacker bytes enter: the
token front layer, the cookie parser, the CSRF check and the login body.

Any input gives a typed refusal (``InvalidToken``, ``AuthenticationError``,
``CSRFError``) or a clean 4xx, never another exception, never a 5xx, and never a changed
store. Already covered elsewhere and not repeated: arbitrary text and bytes as tokens
(tests/crypto/test_jwt_verify.py), arbitrary Cookie text (tests/test_cookies.py), and the
differential test against joserfc on generated tokens (tests/crypto/test_differential.py).
Example counts stay at or under 300 each so the suite stays fast; ``fuzz/`` holds the
long-running atheris harness.
"""

from __future__ import annotations

import asyncio
import json
import string
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authstate import FrozenClock
from authstate.cookies import AUTH_COOKIE, CSRF_COOKIE, REFRESH_COOKIE, read_cookie
from authstate.crypto._json import MAX_DEPTH
from authstate.crypto.jwt import AccessClaims, parse_compact, verify_access_token
from authstate.crypto.keys import KeyRing, generate_key
from authstate.csrf import CSRFProtector
from authstate.errors import AuthenticationError, CSRFError, InvalidToken
from tests.crypto.forge import b64, forge
from tests.crypto.json_shapes import ShapedToken, json_objects, nested_values, tokens
from tests.security.harness import Node, running

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW = 1_800_000_000
KEY = generate_key("EdDSA", now=NOW - 60)
RING = KeyRing([KEY])
HEADER = {"alg": "EdDSA", "typ": "at+jwt", "kid": KEY.kid}
VALID = {
    "iss": "iss",
    "aud": "aud",
    "sub": "user",
    "iat": NOW,
    "nbf": NOW,
    "exp": NOW + 900,
    "jti": "j" * 22,
    "roles": ["staff"],
    "gen": 0,
}
VALID_TOKEN = forge(HEADER, VALID, KEY)
B64URL = string.ascii_letters + string.digits + "-_"


def verify(token: str | bytes) -> AccessClaims:
    return verify_access_token(token, RING, issuer="iss", audience="aud", now=NOW)  # type: ignore[arg-type]


# -- the token front layer ------------------------------------------------------------------------
@st.composite
def mutated(draw: st.DrawFn) -> str:
    """The valid token with a few characters replaced, inserted or deleted."""
    token = list(VALID_TOKEN)
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(token) - 1))
        action = draw(st.sampled_from(["replace", "insert", "delete"]))
        char = draw(st.sampled_from(B64URL + '.=!+/ "%\\\x00é'))
        if action == "replace":
            token[position] = char
        elif action == "insert":
            token.insert(position, char)
        elif len(token) > 1:
            del token[position]
    return "".join(token)


@FUZZ
@given(mutated())
def test_a_mutated_token_is_refused_unless_it_is_the_token(token: str) -> None:
    """T03/T17/T18 as a property: any edit of a valid token is InvalidToken, except the
    edits that give back the very same string (nothing else verifies)."""
    if token == VALID_TOKEN:
        assert verify(token).sub == "user"
        return
    with pytest.raises(InvalidToken):
        verify(token)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
CLAIM_NAMES = st.sampled_from([*VALID, "sid", "extra", "cty"])


@FUZZ
@given(st.dictionaries(CLAIM_NAMES, JSON_VALUES, max_size=4), st.sets(CLAIM_NAMES, max_size=3))
def test_correctly_signed_odd_claims_are_refused_or_exactly_typed(
    changes: dict[str, Any], dropped: set[str]
) -> None:
    """T21/T26 as a property (grey box): correctly signed claims with any JSON values in
    any claim, some claims missing: either InvalidToken, or accepted claims that have
    exactly the documented types (ints for times, non-empty strings for ids)."""
    claims = {k: v for k, v in {**VALID, **changes}.items() if k not in dropped}
    try:
        accepted = verify(forge(HEADER, claims, KEY))
    except InvalidToken:
        return
    except ValueError:  # the forge could not encode (e.g. a token over the cookie cap)
        return
    for name in ("iat", "nbf", "exp", "gen"):
        assert type(getattr(accepted, name)) is int
    assert accepted.sub and accepted.jti and type(accepted.sub) is str
    assert accepted.iss == "iss" and accepted.aud == "aud"
    assert all(type(role) is str for role in accepted.roles)
    assert accepted.exp > NOW - 30


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(["alg", "typ", "kid", "jku", "crit", "b64", "cty"]), JSON_VALUES
    ),
    st.binary(max_size=64),
)
def test_any_header_is_refused_unless_it_is_exactly_ours(
    header: dict[str, Any], signature: bytes
) -> None:
    """T06/T07/T14/T22 as a property: a header of any members and values, with a real or
    random signature, passes only when it is exactly {alg, typ, kid} of the key."""
    payload = b64(json.dumps(VALID).encode())
    head = b64(json.dumps(header).encode())
    token = f"{head}.{payload}.{b64(signature)}"
    try:
        parsed = parse_compact(token)
    except InvalidToken:
        return
    assert set(parsed.header) == {"alg", "typ", "kid"}
    with pytest.raises(InvalidToken):
        verify(token)  # a random signature never verifies


@FUZZ
@given(tokens(KEY, VALID))
def test_a_token_with_json_built_by_structure_is_invalid_token_or_its_claims(
    shaped: ShapedToken,
) -> None:
    """Red team F1 as a property: tokens of the right shape (canonical base64url, the real
    kid, a real or zero signature) whose header or claims carry JSON built by structure:
    nesting to past the cookie cap, escapes and lone surrogates at any depth, huge
    numbers, duplicate names at depth. Only InvalidToken ("nested too deeply" past
    MAX_DEPTH), and acceptance only for a signed token with valid claims."""
    try:
        accepted = verify(shaped.token)
    except InvalidToken as refused:
        if shaped.shape.depth > MAX_DEPTH:
            assert refused.reason == f"{shaped.where}: nested too deeply"
        return
    assert shaped.signed and shaped.where == "claims"
    assert shaped.shape.depth <= MAX_DEPTH
    assert accepted.sub == "user"
    with pytest.raises(InvalidToken):  # the same token unsigned
        verify(shaped.token.rpartition(".")[0] + "." + b64(bytes(64)))


# -- the cookie parser ----------------------------------------------------------------------------
COOKIE_NAMES = st.sampled_from(
    [
        AUTH_COOKIE,
        REFRESH_COOKIE,
        CSRF_COOKIE,
        "__host-authstate",
        "a",
        "x",
        "",
        "__Host-authstatex",
    ]
)
TOKEN68 = st.text(alphabet=B64URL + ".~+/=", min_size=1, max_size=60)
JUNK = st.text(alphabet=' ;=,"\t\\é\x00' + B64URL, max_size=20)


@FUZZ
@given(st.lists(st.tuples(COOKIE_NAMES, TOKEN68 | JUNK), max_size=6), st.sampled_from(["; ", ";"]))
def test_the_cookie_reader_returns_the_one_value_or_refuses(
    pairs: list[tuple[str, str]], separator: str
) -> None:
    """T54/T55 as a property: for any list of pairs, read_cookie returns the value of the
    exact name when it occurs once (verbatim), None when never, and raises
    AuthenticationError (never anything else) when twice or oversized."""
    header = separator.join(f"{name}={value}" for name, value in pairs)
    try:
        value = read_cookie(header, AUTH_COOKIE)
    except AuthenticationError as refused:
        assert "duplicate" in refused.reason or "large" in refused.reason
        return
    ours = [v for n, v in pairs if n == AUTH_COOKIE]
    if not any(";" in v for _, v in pairs) and all(AUTH_COOKIE + "=" not in v for _, v in pairs):
        assert len(ours) <= 1
        expected = ours[0] if ours else None
        assert value == (expected or None)


# -- the CSRF check -------------------------------------------------------------------------------
PROTECTOR = CSRFProtector(b"k" * 32, allowed_origins=(), clock=FrozenClock())
ORIGINS = st.sampled_from(
    [
        None,
        "https://app.test",
        "https://evil.test",
        "null",
        "",
        "https://app.test:443",
        "http://app.test",
    ]
) | st.text(max_size=30)
SITES = st.sampled_from([None, "same-origin", "same-site", "cross-site", "none", ""]) | st.text(
    max_size=12
)
METHODS = st.sampled_from(["POST", "PUT", "DELETE", "PATCH", "GET", "post", "HEAD"])


@FUZZ
@given(METHODS, ORIGINS, SITES, st.text(max_size=80) | st.none(), st.text(max_size=30))
def test_the_csrf_check_passes_only_a_token_bound_to_the_session(
    method: str, origin: str | None, site: str | None, token: str | None, binding: str
) -> None:
    """T58-T63 as a property: for any method, Origin, Sec-Fetch-Site, token text and
    binding the check returns or raises CSRFError; an unsafe request never passes with a
    token that was not issued for that binding."""
    try:
        PROTECTOR.check_request(
            method=method,
            origin=origin,
            sec_fetch_site=site,
            token=token,
            binding=binding,
            own_origin="https://app.test",
        )
    except CSRFError:
        return
    assert method in ("GET", "HEAD")


@FUZZ
@given(st.text(max_size=30), st.text(max_size=30))
def test_a_token_for_one_binding_never_passes_for_another(first: str, second: str) -> None:
    token = PROTECTOR.issue(first)
    PROTECTOR.verify_token(token, first)
    if first != second:
        with pytest.raises(CSRFError):
            PROTECTOR.verify_token(token, second)


# -- over HTTP: the login body and the Cookie header ----------------------------------------------
@pytest.fixture(scope="module")
def live() -> Iterator[tuple[asyncio.Runner, Node]]:
    """One hybrid node on its own event loop for the HTTP properties (hypothesis drives
    examples synchronously)."""
    with asyncio.Runner() as runner:
        context = running("hybrid", login_max_attempts=100_000)
        node = runner.run(context.__aenter__())
        try:
            yield runner, node
        finally:
            runner.run(context.__aexit__(None, None, None))


CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/x-www-form-urlencoded",
        "text/plain",
        None,
        "application/json; charset=latin-1",
    ]
)
BODIES = (
    st.binary(max_size=300)
    | json_objects(max_bytes=8000).map(lambda shape: shape.data)
    | nested_values(max_bytes=8000).map(
        lambda shape: b'{"username":"alice","password":"x","x":' + shape.data + b"}"
    )
    | st.builds(
        lambda u, p: json.dumps({"username": u, "password": p}).encode(), JSON_VALUES, JSON_VALUES
    )
    | st.builds(
        lambda u, p: f"username={u}&password={p}".encode("utf-8", "surrogatepass"),
        st.text(max_size=30),
        st.text(max_size=30),
    )
)


@FUZZ
@given(BODIES, CONTENT_TYPES)
def test_any_login_body_is_a_clean_4xx_and_changes_nothing(
    live: tuple[asyncio.Runner, Node], body: bytes, content_type: str | None
) -> None:
    """Login body as a property: any bytes under any content type get 400, 401 or 413
    (never a 5xx, never a cookie) and no user or session appears."""
    runner, node = live

    async def attempt() -> None:
        before = await node.snapshot()
        headers = {"content-type": content_type} if content_type else {}
        response = await node.raw("POST", "/auth/login", content=body, headers=headers)
        assert response.status_code in (400, 401, 413), (response.status_code, response.text)
        assert "set-cookie" not in response.headers
        after = await node.snapshot()
        assert after["users"] == before["users"] and after["sessions"] == before["sessions"]

    runner.run(attempt())


@FUZZ
@given(st.data())
def test_a_cookie_with_json_built_by_structure_is_the_one_401(
    live: tuple[asyncio.Runner, Node], data: st.DataObject
) -> None:
    """F1 over HTTP (in process, hybrid): the node's own header and kid, JSON built by
    structure in the header or claims, real or zero signature: GET /auth/me is the one
    byte-identical 401, /healthz stays 200."""
    runner, node = live
    shaped = data.draw(tokens(node.signing_key(), node.claims("alice")))

    async def attempt() -> None:
        response = await node.raw("GET", "/auth/me", cookie=f"{AUTH_COOKIE}={shaped.token}")
        if response.status_code == 200:  # only a signed token with alice's valid claims
            assert shaped.signed and shaped.shape.depth <= MAX_DEPTH
            return
        assert response.status_code == 401, response.text
        assert response.content == UNAUTHENTICATED
        health = await node.raw("GET", "/healthz", cookie=f"{AUTH_COOKIE}={shaped.token}")
        assert health.status_code == 200

    runner.run(attempt())


UNAUTHENTICATED = b'{"error":"unauthenticated","detail":"authentication required"}'


@FUZZ
@given(st.binary(max_size=400))
def test_any_cookie_header_bytes_are_anonymous_never_an_error(
    live: tuple[asyncio.Runner, Node], raw: bytes
) -> None:
    """T23/T42 as a property: any bytes as the Cookie header (with the auth cookie's name
    in front or not) make GET /auth/me 401 or 413 and POST /auth/refresh a 4xx."""
    runner, node = live

    async def attempt() -> None:
        for cookie in (
            raw,
            AUTH_COOKIE.encode() + b"=" + raw,
            REFRESH_COOKIE.encode() + b"=" + raw,
        ):
            response = await node.raw("GET", "/auth/me", cookie=cookie)
            assert response.status_code in (401, 413)
            refreshed = await node.raw(
                "POST", "/auth/refresh", cookie=cookie, headers={"x-csrf-token": "x"}
            )
            assert 400 <= refreshed.status_code < 500

    runner.run(attempt())
