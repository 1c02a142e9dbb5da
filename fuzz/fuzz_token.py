"""Coverage-guided fuzzing (atheris / libFuzzer) of everything attacker bytes reach first.

    .venv/bin/python fuzz/fuzz_token.py -max_total_time=60 fuzz/corpus      # bounded
    .venv/bin/python fuzz/fuzz_token.py -fork=2 -max_total_time=28800 fuzz/corpus  # long

The first input byte picks a target, the rest is its input:

0 ``parse_compact`` on the raw bytes (the token front layer)
1 ``verify_access_token`` on the bytes as text, against EdDSA, ES256 and HS256 rings
2 ``read_cookie`` on the bytes as a latin-1 Cookie header (what ASGI servers hand us)
3 ``CSRFProtector.check_request`` with a token, Origin and Sec-Fetch-Site cut from input
4 the strict JSON parser (``loads_object``) and strict base64url (``b64url_decode``)
5 a valid token with the input spliced in (deep mutations past the base64 layer)
6 JSON built by structure from the input (depth, array/object pattern, a duplicate name
  at one level, a leaf: a ``\\uXXXX`` escape, a huge number, or input text), parsed on
  its own and as the claims or header of a real-kid token (red team F1: byte mutations
  of flat seeds never reach 450-900 levels)
7 ``verify_encrypted_access_token`` (JWE, ``AUTHSTATE_TOKEN_FORMAT=jwe``) on the bytes as
  text, and on a valid JWE with the input spliced in, against EdDSA, ES256 and HS256 rings

Each target may only fail with its documented typed error (``InvalidToken``,
``AuthenticationError``, ``CSRFError``, ``ValueError`` for the two primitives); any other
exception, and any accepted token that is not the one we issued, is a crash. With a
corpus folder argument that is empty, valid seeds are written into it first; the
deep-nesting family (``seed-deep-*``) is added to any corpus that lacks it.
"""

from __future__ import annotations

import base64
import contextlib
import os
import sys

import atheris

with atheris.instrument_imports(include=["authstate"]):
    from authstate._time import FrozenClock
    from authstate.cookies import AUTH_COOKIE, read_cookie
    from authstate.crypto._json import MAX_DEPTH, StrictJSONError, loads_object
    from authstate.crypto.ids import b64url_decode
    from authstate.crypto.jwe import issue_encrypted_access_token, verify_encrypted_access_token
    from authstate.crypto.jwt import issue_access_token, parse_compact, verify_access_token
    from authstate.crypto.keys import KeyRing, generate_key
    from authstate.csrf import CSRFProtector
    from authstate.errors import AuthenticationError, CSRFError, InvalidToken

NOW = 1_800_000_000
KEYS = [generate_key(alg, now=NOW - 60) for alg in ("EdDSA", "ES256", "HS256")]  # type: ignore[arg-type]
RINGS = [KeyRing([key]) for key in KEYS]
ISSUED = [
    issue_access_token(
        key,
        issuer="iss",
        audience="aud",
        subject="user",
        roles=["staff"],
        now=NOW,
        ttl_seconds=900,
        handle="s" * 22,
    )[0]
    for key in KEYS
]
ISSUED_JWE = [
    issue_encrypted_access_token(
        key,
        issuer="iss",
        audience="aud",
        subject="user",
        roles=["staff"],
        now=NOW,
        ttl_seconds=900,
        handle="s" * 22,
    )[0]
    for key in KEYS
]
CSRF = CSRFProtector(b"k" * 32, allowed_origins=(), clock=FrozenClock())
BINDING = "b" * 22
CSRF_TOKEN = CSRF.issue(BINDING)


def _verify(token: str) -> None:
    for ring, issued in zip(RINGS, ISSUED, strict=True):
        try:
            claims = verify_access_token(token, ring, issuer="iss", audience="aud", now=NOW)
        except InvalidToken:
            continue
        if token != issued or claims.sub != "user":
            raise AssertionError(f"accepted a token we did not issue: {token!r}")


def _verify_jwe(token: str) -> None:
    for ring, issued in zip(RINGS, ISSUED_JWE, strict=True):
        try:
            claims = verify_encrypted_access_token(
                token, ring, issuer="iss", audience="aud", now=NOW
            )
        except InvalidToken:
            continue
        if token != issued or claims.sub != "user":
            raise AssertionError(f"accepted a JWE we did not issue: {token!r}")


TARGETS = 8
LEAVES = ["1e400", "-1e400", "9" * 1200, "1e-400", "NaN", "[]", "{}", '"x"', "0"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _structure(provider: atheris.FuzzedDataProvider) -> tuple[bytes, int]:
    """JSON text built from the input, and how deep its arrays and objects nest."""
    levels = provider.ConsumeIntInRange(0, 1400)
    pattern = [provider.ConsumeBool() for _ in range(provider.ConsumeIntInRange(1, 4))]
    duplicate_at = provider.ConsumeIntInRange(-1, levels)
    choice = provider.ConsumeIntInRange(0, len(LEAVES) + 1)
    if choice == len(LEAVES):
        leaf = f'"\\u{provider.ConsumeIntInRange(0, 0xFFFF):04x}"'  # lone surrogates too
    elif choice == len(LEAVES) + 1:
        leaf = (
            '"' + provider.ConsumeUnicodeNoSurrogates(40).replace("\\", "").replace('"', "") + '"'
        )
    else:
        leaf = LEAVES[choice]
    opening, closing = [], []
    for level in range(levels):
        if pattern[level % len(pattern)]:
            opening.append('{"a":0,"a":' if level == duplicate_at else '{"a":')
            closing.append("}")
        else:
            opening.append("[0," if level == duplicate_at else "[")
            closing.append("]")
    text = "{" + '"x":' + "".join(opening) + leaf + "".join(reversed(closing)) + "}"
    return text.encode("utf-8", "surrogatepass"), levels + 1 + (leaf in ("[]", "{}"))


def _structured(body: bytes) -> None:
    provider = atheris.FuzzedDataProvider(body)
    in_header = provider.ConsumeBool()
    text, depth = _structure(provider)
    try:
        loads_object(text)
    except StrictJSONError as refused:
        if depth > MAX_DEPTH and str(refused) != "nested too deeply":
            message = f"depth {depth} refused for another reason: {refused}"
            raise AssertionError(message) from None
    else:
        if depth > MAX_DEPTH:
            raise AssertionError(f"depth {depth} accepted")
    h, p, s = ISSUED[0].split(".")
    if in_header:
        head = b'{"alg":"EdDSA","typ":"at+jwt","kid":"' + KEYS[0].kid.encode() + b'","y":' + text
        token = f"{_b64(head + b'}')}.{p}.{s}"
    else:
        token = f"{h}.{_b64(text)}.{_b64(bytes(64))}"
    _verify(token)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    target, body = data[0] % TARGETS, data[1:]
    if target == 0:
        with contextlib.suppress(InvalidToken):
            parse_compact(body)
    elif target == 1:
        _verify(body.decode("latin-1"))
    elif target == 2:
        text = body.decode("latin-1")
        try:
            read_cookie(text, AUTH_COOKIE)
            read_cookie(text.split("\n"), AUTH_COOKIE)
        except AuthenticationError:
            pass
    elif target == 3:
        provider = atheris.FuzzedDataProvider(body)
        method = provider.PickValueInList(["POST", "GET", "DELETE", "post"])
        origin = provider.ConsumeUnicodeNoSurrogates(40) if provider.ConsumeBool() else None
        site = provider.ConsumeUnicodeNoSurrogates(15) if provider.ConsumeBool() else None
        token = provider.ConsumeUnicodeNoSurrogates(80)
        try:
            CSRF.check_request(
                method=method,
                origin=origin,
                sec_fetch_site=site,
                token=token,
                binding=BINDING,
                own_origin="https://app.test",
            )
        except CSRFError:
            return
        if method not in ("GET",) and token != CSRF_TOKEN:
            raise AssertionError(f"CSRF check passed a token it never issued: {token!r}")
    elif target == 4:
        for parse in (loads_object, lambda b: b64url_decode(b.decode("latin-1"))):
            with contextlib.suppress(ValueError):
                parse(body)
    elif target == 5:
        issued = ISSUED[len(body) % 3]
        cut = (body[0] if body else 0) % len(issued)
        _verify(issued[:cut] + body[1:].decode("latin-1") + issued[cut:])
    elif target == 6:
        _structured(body)
    else:
        _verify_jwe(body.decode("latin-1"))
        issued = ISSUED_JWE[len(body) % 3]
        cut = (body[0] if body else 0) % len(issued)
        _verify_jwe(issued[:cut] + body[1:].decode("latin-1") + issued[cut:])


def _deep_seeds() -> dict[str, bytes]:
    """Red team F1 and relatives, for every target that reads JSON: the token (real kid,
    claims nested 600 levels around one escape, zero signature), the JSON alone, and
    structure-target inputs near the limit and in the 450-900 window."""
    h = ISSUED[0].split(".")[0]
    seeds: dict[str, bytes] = {}
    for depth in (MAX_DEPTH, MAX_DEPTH + 1, 450, 600, 900):
        for name, inner in (("escape", b'"\\u0041"'), ("surrogate", b'"\\ud800"')):
            claims = b'{"a":' + b"[" * depth + inner + b"]" * depth + b"}"
            token = f"{h}.{_b64(claims)}.{_b64(bytes(64))}".encode()
            seeds[f"seed-deep-token-{name}-{depth}"] = bytes([1]) + token
            seeds[f"seed-deep-raw-{name}-{depth}"] = bytes([0]) + token
            seeds[f"seed-deep-json-{name}-{depth}"] = bytes([4]) + claims
    objects = b'{"a":' * 400 + b'"\\u0041"' + b"}" * 400
    seeds["seed-deep-json-objects-400"] = bytes([4]) + objects
    seeds["seed-deep-token-objects-400"] = bytes([1]) + f"{h}.{_b64(objects)}.AA".encode()
    seeds["seed-deep-splice"] = bytes([5, 200]) + b"[" * 600
    for depth in (MAX_DEPTH, 600):
        # target 6: the provider reads the choices from these bytes; libFuzzer mutates them
        seeds[f"seed-deep-structure-{depth}"] = bytes([6]) + depth.to_bytes(2, "little") * 8
    return seeds


def _seed(folder: str) -> None:
    os.makedirs(folder, exist_ok=True)
    for name, seed in _deep_seeds().items():
        path = os.path.join(folder, name)
        if not os.path.exists(path):
            with open(path, "wb") as handle:
                handle.write(seed)
    if any(not name.startswith("seed-deep-") for name in os.listdir(folder)):
        return
    seeds = [bytes([0]) + ISSUED[0].encode(), bytes([1]) + ISSUED[1].encode()]
    seeds += [bytes([1]) + ISSUED[2].encode(), bytes([2]) + f"a=b; {AUTH_COOKIE}=x".encode()]
    seeds += [bytes([3, 1, 1]) + b"https://app.test" + CSRF_TOKEN.encode()]
    seeds += [bytes([4]) + b'{"alg":"EdDSA","typ":"at+jwt"}', bytes([5, 40]) + b"."]
    seeds += [bytes([7]) + ISSUED_JWE[0].encode(), bytes([7, 120]) + b"."]
    for index, seed in enumerate(seeds):
        with open(os.path.join(folder, f"seed-{index}"), "wb") as handle:
            handle.write(seed)


def main() -> None:
    folders = [arg for arg in sys.argv[1:] if not arg.startswith("-")]
    for folder in folders:
        _seed(folder)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
