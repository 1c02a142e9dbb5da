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

Each target may only fail with its documented typed error (``InvalidToken``,
``AuthenticationError``, ``CSRFError``, ``ValueError`` for the two primitives); any other
exception, and any accepted token that is not the one we issued, is a crash. With a
corpus folder argument that is empty, valid seeds are written into it first.
"""

from __future__ import annotations

import contextlib
import os
import sys

import atheris

with atheris.instrument_imports(include=["authstate"]):
    from authstate._time import FrozenClock
    from authstate.cookies import AUTH_COOKIE, read_cookie
    from authstate.crypto._json import loads_object
    from authstate.crypto.ids import b64url_decode
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
        sid="s" * 22,
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


def test_one_input(data: bytes) -> None:
    if not data:
        return
    target, body = data[0] % 6, data[1:]
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
    else:
        issued = ISSUED[len(body) % 3]
        cut = (body[0] if body else 0) % len(issued)
        _verify(issued[:cut] + body[1:].decode("latin-1") + issued[cut:])


def _seed(folder: str) -> None:
    os.makedirs(folder, exist_ok=True)
    if os.listdir(folder):
        return
    seeds = [bytes([0]) + ISSUED[0].encode(), bytes([1]) + ISSUED[1].encode()]
    seeds += [bytes([1]) + ISSUED[2].encode(), bytes([2]) + f"a=b; {AUTH_COOKIE}=x".encode()]
    seeds += [bytes([3, 1, 1]) + b"https://app.test" + CSRF_TOKEN.encode()]
    seeds += [bytes([4]) + b'{"alg":"EdDSA","typ":"at+jwt"}', bytes([5, 40]) + b"."]
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
