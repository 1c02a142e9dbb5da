"""B. Encoding and parsing (T16-T23, T81): one token has one spelling and one meaning, and any
malformed, odd or oversized input is a quick 401 (or 4xx), never a 5xx.

Unit-level variants of the same rules are in tests/crypto/test_jwt_front_layer.py and
test_json.py; here they go through HTTP, cookie parsing and the middleware.
"""

from __future__ import annotations

from typing import Any

import pytest

import authstate.crypto.compact as compact_module
from authstate.cookies import AUTH_COOKIE
from tests.crypto.forge import b64, raw_json
from tests.security.harness import Node, asgi_request

pytestmark = pytest.mark.anyio


async def refused(node: Node, cookie: str | bytes) -> int:
    """Send ``cookie`` to GET /auth/me: a 4xx, and no auth. (How fast is the bench's job;
    that the costly steps never run is asserted by the size and depth tests.)"""
    response = await node.raw("GET", "/auth/me", cookie=cookie)
    assert response.status_code in (400, 401, 413, 431), (response.status_code, response.text)
    return response.status_code


async def assert_refused(node: Node, *tokens: str) -> None:
    for token in tokens:
        assert await node.whoami_token(token) is None, token


async def valid_claims(node: Node) -> dict[str, Any]:
    """Claims for alice that the node accepts when correctly signed."""
    claims = await node.live_claims("alice")
    assert await node.whoami_token(node.mint(claims)) == node.users["alice"]
    return claims


# -- T16 -----------------------------------------------------------------------------------------
async def test_anything_but_three_non_empty_segments_is_refused(jwt_node: Node) -> None:
    """T16: empty, dots only, one/two/four/six segments, a missing part with or without its
    separator, and an extra empty segment: 401 (Wycheproof JWS structure cases run at unit
    level in tests/crypto/test_wycheproof.py)."""
    token = (await jwt_node.login("alice")).auth
    h, p, s = token.split(".")
    shapes = [
        ".",
        "..",
        "...",
        h,
        f"{h}.{p}",
        f"{h}.{p}.{s}.{s}",
        f"{h}.{p}.{s}.{h}.{p}.{s}",
        f".{p}.{s}",
        f"{h}..{s}",
        f"{h}.{p}.",
        f"{p}.{s}",
        f"{h}.{s}",
        f"{token}.",
        f".{token}",
        f"{h}.{p}.{s}..",
    ]
    await assert_refused(jwt_node, *shapes)
    assert await jwt_node.whoami(f"{AUTH_COOKIE}=") is None


# -- T17 -----------------------------------------------------------------------------------------
ILLEGAL = ["=", "==", "!!!!", " ", "\t", "+", "/", "?", "#", "%", "é", '"', "\\"]


async def test_characters_outside_base64url_anywhere_are_refused(jwt_node: Node) -> None:
    """T17: ``=``, ``!!!!``, space, tab, ``+``, ``/``, ``?``, ``#``, a non-ASCII letter,
    quotes and backslashes appended to or inserted in each segment, the whole token in
    quotes with junk, and one character percent-encoded: 401 every time. (Wycheproof tcId
    372/373, a ``?`` inside a segment that it calls valid, are refused on purpose.)"""
    token = (await jwt_node.login("alice")).auth
    segments = token.split(".")
    variants: list[str] = []
    for index in range(3):
        for junk in ILLEGAL:
            for position in (0, len(segments[index]) // 2, len(segments[index])):
                changed = list(segments)
                changed[index] = changed[index][:position] + junk + changed[index][position:]
                variant = ".".join(changed)
                if variant.strip(' \t"') != variant:
                    continue  # around the whole value: the next test
                variants.append(variant)
    variants.append(f'"{token}="')
    variants.append(token.replace(".", "%2E", 1))
    variants.append(token[:5] + "%" + format(ord(token[5]), "02X") + token[6:])
    for variant in variants:
        cookie = f"{AUTH_COOKIE}={variant}".encode()
        assert await refused(jwt_node, cookie) == 401, variant


async def test_a_quoted_or_padded_cookie_value_is_not_the_token(jwt_node: Node) -> None:
    """T17: the token in double quotes (cookie quoting), or with a space or tab before or
    after it, is another spelling of the credential: 401."""
    token = (await jwt_node.login("alice")).auth
    for variant in (f'"{token}"', f" {token}", f"{token} ", f"\t{token}", f'" {token}"'):
        assert await jwt_node.whoami(f"{AUTH_COOKIE}={variant}; x=y") is None, variant


async def test_line_breaks_and_control_bytes_in_the_cookie_are_refused(jwt_node: Node) -> None:
    """T17: CR, LF, CRLF, NUL and DEL inside the token, sent as raw header bytes straight
    through ASGI (HTTP clients refuse to send them): 401, never a 5xx."""
    token = (await jwt_node.login("alice")).auth
    cut = len(token) // 2
    for junk in (b"\n", b"\r\n", b"\r", b"\x00", b"\x7f", b"\xff"):
        value = token[:cut].encode() + junk + token[cut:].encode()
        status, _, body = await asgi_request(
            jwt_node.app, "GET", "/auth/me", [(b"cookie", AUTH_COOKIE.encode() + b"=" + value)]
        )
        assert status == 401, (junk, body)


# -- T18 -----------------------------------------------------------------------------------------
def sibling_spelling(segment: str) -> str | None:
    """The segment with its last character replaced by one that decodes to the same bytes
    (only the unused low bits differ), or None when the length leaves no unused bits."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    unused = {2: 4, 3: 2}.get(len(segment) % 4)
    if unused is None:
        return None
    index = alphabet.index(segment[-1])
    return segment[:-1] + alphabet[index | 1]  # set the lowest unused bit


async def test_a_token_has_exactly_one_spelling(jwt_node_any_alg: Node) -> None:
    """T18: the signature or payload with non-zero unused trailing bits decodes to the very
    same bytes but is 401 (so a revoked token cannot come back respelled: T33)."""
    node = jwt_node_any_alg
    session = await node.login("alice")
    h, p, s = session.auth.split(".")
    variants = []
    if (sig := sibling_spelling(s)) is not None:
        variants.append(f"{h}.{p}.{sig}")
    if (payload := sibling_spelling(p)) is not None:
        variants.append(f"{h}.{payload}.{s}")
    if (header := sibling_spelling(h)) is not None:
        variants.append(f"{header}.{p}.{s}")
    assert variants, "every segment length was a multiple of 4: pick other claims"
    await assert_refused(node, *variants)


# -- T19 -----------------------------------------------------------------------------------------
async def test_duplicate_json_members_are_refused_even_when_signed(jwt_node: Node) -> None:
    """T19: correctly signed tokens with ``alg``, ``typ`` or ``kid`` twice in the header
    (either order, one value ``none``/a refresh type) or ``sub``, ``exp`` or ``aud`` twice
    in the claims: 401 (PyJWT and joserfc take the last one)."""
    claims = await valid_claims(jwt_node)
    key = jwt_node.signing_key()
    body = raw_json(claims)[1:-1].decode()
    header_base = f'"typ":"at+jwt","kid":"{key.kid}"'
    headers = [
        f'{{"alg":"{key.alg}","alg":"none",{header_base}}}',
        f'{{"alg":"none","alg":"{key.alg}",{header_base}}}',
        f'{{"alg":"{key.alg}","typ":"refresh+jwt","typ":"at+jwt","kid":"{key.kid}"}}',
        f'{{"alg":"{key.alg}","typ":"at+jwt","kid":"{key.kid}","kid":"{key.kid}"}}',
    ]
    tokens = [jwt_node.mint(raw_json(claims), header=h.encode()) for h in headers]
    for duplicate in (
        f'"sub":"{jwt_node.users["mallory"]}"',
        '"exp":9999999999',
        '"aud":"elsewhere"',
    ):
        for raw in (f"{{{duplicate},{body}}}", f"{{{body},{duplicate}}}"):
            tokens.append(jwt_node.mint(raw.encode()))
    await assert_refused(jwt_node, *tokens)


# -- T20 -----------------------------------------------------------------------------------------
async def test_json_not_in_strict_utf8_is_refused_even_when_signed(jwt_node: Node) -> None:
    """T20: header or claims as UTF-16 (LE with BOM, BE), UTF-32, UTF-8 with BOM, invalid
    UTF-8 (overlong ``\\xC0\\xAF``), or a lone surrogate escape in ``sub``: 401."""
    claims = await valid_claims(jwt_node)
    key = jwt_node.signing_key()
    header = {"alg": key.alg, "typ": "at+jwt", "kid": key.kid}
    text_claims = raw_json(claims).decode()
    text_header = raw_json(header).decode()
    encodings = ["utf-16", "utf-16-be", "utf-32", "utf-8-sig"]
    tokens = []
    for encoding in encodings:
        tokens.append(jwt_node.mint(text_claims.encode(encoding)))
        tokens.append(jwt_node.mint(text_claims.encode(), header=text_header.encode(encoding)))
    overlong = raw_json({**claims, "sub": "X"}).replace(b'"X"', b'"\xc0\xaf"')
    tokens.append(jwt_node.mint(overlong))
    surrogate = raw_json({**claims, "sub": "X"}).replace(b'"X"', b'"\\ud800"')
    tokens.append(jwt_node.mint(surrogate))
    await assert_refused(jwt_node, *tokens)


# -- T21 -----------------------------------------------------------------------------------------
BAD_NUMERIC_DATES = [
    b"Infinity",
    b"NaN",
    b"-Infinity",
    b"1e999",
    b"true",
    b'"1900000000"',
    b"[1900000000]",
    b"null",
    b"9" * 5000,
    b"-1",
    b"1900000000.5",
    b"1.9e9",
    b"9007199254740993",
]


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
async def test_time_claims_must_be_plain_integers(jwt_node: Node, claim: str) -> None:
    """T21: ``exp``/``nbf``/``iat`` as Infinity, NaN, 1e999, true, a numeric string, a list,
    null, a 5 000-digit integer, negative, fractional, or beyond 2**53: 401 (a NaN or huge
    exp would never expire; PyJWT takes a numeric string)."""
    claims = await valid_claims(jwt_node)
    tokens = []
    for value in BAD_NUMERIC_DATES:
        raw = raw_json({**claims, claim: 0}).replace(
            f'"{claim}":0'.encode(), claim_bytes(claim, value)
        )
        tokens.append(jwt_node.mint(raw))
    await assert_refused(jwt_node, *tokens)


def claim_bytes(name: str, value: bytes) -> bytes:
    return f'"{name}":'.encode() + value


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("aud", 123),
        ("aud", []),
        ("aud", [None]),
        ("aud", ""),
        ("sub", 0),
        ("sub", ""),
        ("sub", {}),
        ("sub", None),
        ("jti", ""),
        ("jti", []),
        ("roles", "admin"),
        ("roles", [1]),
        ("gen", -1),
        ("gen", "0"),
        ("gen", True),
        ("sid", None),
        ("sid", 5),
    ],
)
async def test_identifier_claims_must_have_their_exact_types(
    jwt_node: Node, claim: str, value: Any
) -> None:
    """T21: ``aud`` as a number, empty list, ``[null]`` or empty; ``sub`` as 0, "", {} or
    null; ``jti`` empty or a list; ``roles`` a string; ``gen`` negative, a string or true;
    ``sid`` null or a number: 401."""
    claims = await valid_claims(jwt_node)
    await assert_refused(jwt_node, jwt_node.mint({**claims, claim: value}))


# -- T22 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "header",
    [b"[]", b'"x"', b"1", b"null", b"{}", b'{"alg":null}', b'{"alg":["HS256"]}', b""],
)
async def test_a_header_that_is_not_an_object_with_a_string_alg_is_refused(
    jwt_node: Node, header: bytes
) -> None:
    """T22 (black box): header ``[]``, a string, a number, null, ``{}``, a null or list alg,
    or empty: 401 (a signature cannot even be looked for)."""
    token = (await jwt_node.login("alice")).auth
    _, p, s = token.split(".")
    await assert_refused(jwt_node, f"{b64(header)}.{p}.{s}")


async def test_an_alg_with_a_nul_byte_or_claims_that_are_not_an_object_are_refused(
    jwt_node: Node,
) -> None:
    """T22 (grey box): ``alg`` "<ours>\\u0000"; claims ``[1,2]``, a string, 42, null or
    empty, correctly signed: 401."""
    key = jwt_node.signing_key()
    claims = await valid_claims(jwt_node)
    header = raw_json({"alg": key.alg + "\x00", "typ": "at+jwt", "kid": key.kid})
    tokens = [jwt_node.mint(raw_json(claims), header=header)]
    tokens += [jwt_node.mint(body) for body in (b"[1,2]", b'"str"', b"42", b"null", b"")]
    await assert_refused(jwt_node, *tokens)


# -- T23 -----------------------------------------------------------------------------------------
async def test_oversized_and_pathological_cookies_are_refused(jwt_node: Node) -> None:
    """T23: an 8 KB, 64 KB and 1 MB cookie value; a token of 100 000 periods; a header of
    100 000 nested arrays; a header with a 10 000-digit integer; 200 cookies in one header;
    8 000 backslashes in quotes (CVE-2024-7592): each a 4xx within a second, and the node
    still serves alice afterwards."""
    session = await jwt_node.login("alice")
    deep = b'{"alg":"HS256","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    big_int = b'{"alg":"HS256","typ":"at+jwt","kid":"' + b"1" * 10_000 + b'"}'
    cookies: list[str | bytes] = [
        f"{AUTH_COOKIE}={'a' * 8_000}",
        f"{AUTH_COOKIE}={'a' * 64_000}",
        f"{AUTH_COOKIE}={'a' * 1_000_000}",
        f"{AUTH_COOKIE}={'.' * 100_000}",
        f"{AUTH_COOKIE}={b64(deep)}.e30.e30",
        f"{AUTH_COOKIE}={b64(big_int)}.e30.e30",
        "; ".join(f"c{i}=v{i}" for i in range(200)) + f"; {AUTH_COOKIE}=x",
        f'{AUTH_COOKIE}="{chr(92) * 8_000}"',
    ]
    for cookie in cookies:
        await refused(jwt_node, cookie)
    assert (await session.me()).status_code == 200


async def test_a_deeply_nested_header_is_refused_before_it_is_parsed(
    jwt_node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """T23 (c): a nested header that fits in the cookie is refused by the header size cap
    before any base64 decoding or JSON parsing."""
    deep = b'{"alg":"HS256","x":' + b"[" * 1_400 + b"]" * 1_400 + b"}"
    token = f"{b64(deep)}.e30.e30"
    assert len(token) < 4096

    def no_decoding(segment: str) -> bytes:
        raise AssertionError("the oversized header reached base64 decoding")

    monkeypatch.setattr(compact_module, "b64url_decode_alphabet_checked", no_decoding)
    assert await jwt_node.whoami_token(token) is None


# -- T81-T83 (red team F1) ---------------------------------------------------------------------
async def test_a_deeply_nested_token_is_one_401_and_every_other_route_still_answers(
    jwt_node_any_alg: Node,
) -> None:
    """T81 (F1): the node's own header (a real kid), claims nested 33 to 1 300 levels around
    ``\\u0041`` or a lone surrogate, a zero or a real signature: the one 401 on /auth/me,
    and with that cookie /healthz is 200, the dashboard and an unknown path answer below
    500, and alice can still log in. Before the fix, 450-900 levels raised RecursionError
    outside the parser's guard (a 500 on every route)."""
    node = jwt_node_any_alg
    key = node.signing_key()
    head = raw_json({"alg": key.alg, "typ": "at+jwt", "kid": key.kid})
    tokens = []
    for depth in (33, 100, 300, 450, 600, 750, 900, 1000, 1300):
        for inner in (b'"\\u0041"', b'"\\ud800"'):
            claims = b'{"a":' + b"[" * depth + inner + b"]" * depth + b"}"
            tokens.append(f"{b64(head)}.{b64(claims)}.{b64(bytes(64))}")
            tokens.append(node.mint(claims))
    for token in tokens:
        cookie = f"{AUTH_COOKIE}={token}"
        assert await refused(node, cookie) == 401
        assert (await node.raw("GET", "/healthz", cookie=cookie)).status_code == 200
        assert (await node.raw("GET", "/", cookie=cookie)).status_code < 500
        assert (await node.raw("GET", "/nowhere", cookie=cookie)).status_code == 404
    assert (await node.login("alice")).auth
