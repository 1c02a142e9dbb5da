"""Differential testing against joserfc: we never accept a token joserfc refuses.

joserfc is the oracle, with the algorithm pinned to the key's and every claim we check
validated (iss, aud, sub, jti, exp, iat, nbf with the same leeway, typ). Our verifier is
meant to be strictly stricter: anything it accepts, joserfc must accept too. The valid-token
test shows the oracle is not vacuous (it accepts what we issue).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from joserfc import jwt as jose_jwt
from joserfc.jwk import ECKey, OctKey, OKPKey

from authstate.crypto.jwt import issue_access_token, verify_access_token
from authstate.crypto.keys import Algorithm, KeyRing, SigningKey, generate_key
from authstate.errors import InvalidToken
from tests.crypto.forge import AUDIENCE, ISSUER, NOW, b64, claims, forge, header

pytestmark = pytest.mark.filterwarnings("ignore::joserfc.errors.SecurityWarning")

LEEWAY = 30
ALGORITHMS: list[Algorithm] = ["EdDSA", "ES256", "HS256"]
KEYS: dict[str, SigningKey] = {alg: generate_key(alg, now=NOW - 60) for alg in ALGORITHMS}
RINGS = {alg: KeyRing([key]) for alg, key in KEYS.items()}


def _jose_key(key: SigningKey) -> Any:
    if isinstance(key.private_key, bytes):
        return OctKey.import_key(key.private_key)
    jwk: dict[str, str | list[str]] = dict(key.public_jwk())
    if key.alg == "EdDSA":
        return OKPKey.import_key(jwk)
    return ECKey.import_key(jwk)


JOSE_KEYS = {alg: _jose_key(key) for alg, key in KEYS.items()}


def joserfc_accepts(token: str, alg: str) -> bool:
    try:
        decoded = jose_jwt.decode(token, JOSE_KEYS[alg], algorithms=[alg])
        if decoded.header.get("typ") != "at+jwt":
            return False
        registry = jose_jwt.JWTClaimsRegistry(
            now=NOW,
            leeway=LEEWAY,
            iss={"essential": True, "value": ISSUER},
            aud={"essential": True, "value": AUDIENCE},
            sub={"essential": True},
            jti={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            nbf={"essential": True},
        )
        registry.validate(decoded.claims)
    except Exception:  # any refusal by the oracle, whatever its type
        return False
    return True


def we_accept(token: str, alg: str) -> bool:
    try:
        verify_access_token(
            token, RINGS[alg], issuer=ISSUER, audience=AUDIENCE, now=NOW, leeway=LEEWAY
        )
    except InvalidToken:
        return False
    return True


def assert_never_more_lenient(token: str, alg: str) -> None:
    ours, theirs = we_accept(token, alg), joserfc_accepts(token, alg)
    verdict = {True: "accepts", False: "refuses"}
    event(f"authstate {verdict[ours]}, joserfc {verdict[theirs]}")
    assert theirs or not ours, f"we accept what joserfc refuses: {token!r}"


TEXT = st.characters(exclude_categories=["Cs"])  # lone surrogates are not UTF-8
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
algorithms = st.sampled_from(ALGORITHMS)

# Values that sit on the edges our checks and joserfc's draw.
times = st.one_of(
    st.integers(min_value=NOW - 200, max_value=NOW + 200),
    st.sampled_from([0, -1, NOW - LEEWAY, NOW + LEEWAY, 2**53 - 1, 2**53, 2**63]),
    st.floats(min_value=NOW - 100, max_value=NOW + 100),
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.sampled_from([ISSUER, AUDIENCE, "", "at+jwt"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=4,
)
CLAIM_NAMES = ["iss", "aud", "sub", "iat", "nbf", "exp", "jti", "roles", "sid", "gen", "x"]
DROP = object()
claim_edits = st.dictionaries(
    st.sampled_from(CLAIM_NAMES),
    st.one_of(json_values, times, st.just(DROP), st.just([AUDIENCE, "other"])),
    max_size=4,
)
header_edits = st.dictionaries(
    st.sampled_from(["alg", "typ", "kid", "jwk", "crit", "cty", "b64", "x5u", "zip"]),
    st.one_of(
        st.sampled_from(["EdDSA", "ES256", "HS256", "none", "None", "eddsa", "", "JWT", "AT+JWT"]),
        json_values,
        st.just(DROP),
    ),
    max_size=3,
)


def _apply(base: dict[str, object], edits: dict[str, object]) -> dict[str, object]:
    out = {**base, **edits}
    return {name: value for name, value in out.items() if value is not DROP}


@FUZZ
@given(alg=algorithms, head=header_edits, body=claim_edits)
def test_re_signed_header_and_claim_edits_are_never_accepted_when_joserfc_refuses(
    alg: str, head: dict[str, object], body: dict[str, object]
) -> None:
    key = KEYS[alg]
    token = forge(_apply(header(key), head), _apply(claims(), body), key)
    assert_never_more_lenient(token, alg)


@st.composite
def mutated_tokens(draw: st.DrawFn) -> tuple[str, str]:
    alg = draw(algorithms)
    token = forge(header(KEYS[alg]), claims(), KEYS[alg])
    chars = list(token)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \n%\x00é"
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        kind = draw(st.sampled_from(["replace", "insert", "delete"]))
        at = draw(st.integers(min_value=0, max_value=len(chars) - 1))
        if kind == "replace":
            chars[at] = draw(st.sampled_from(alphabet))
        elif kind == "insert":
            chars.insert(at, draw(st.sampled_from(alphabet)))
        elif len(chars) > 1:
            del chars[at]
    return alg, "".join(chars)


@FUZZ
@given(mutated_tokens())
def test_byte_flips_in_a_valid_token_are_never_accepted_when_joserfc_refuses(
    case: tuple[str, str],
) -> None:
    assert_never_more_lenient(case[1], case[0])


@FUZZ
@given(
    alg=algorithms,
    order=st.one_of(
        st.lists(st.integers(min_value=0, max_value=5), min_size=3, max_size=3),
        st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=6),
    ),
    other_alg=algorithms,
)
@example(alg="EdDSA", order=[0, 1, 2], other_alg="EdDSA")  # untouched: both accept
@example(alg="HS256", order=[3, 1, 5], other_alg="HS256")  # their header and signature
def test_segments_swapped_or_spliced_between_tokens_are_never_accepted_when_joserfc_refuses(
    alg: str, order: list[int], other_alg: str
) -> None:
    mine = forge(header(KEYS[alg]), claims(), KEYS[alg]).split(".")
    theirs = forge(header(KEYS[other_alg]), claims(sub="alice"), KEYS[other_alg]).split(".")
    token = ".".join((mine + theirs)[i] for i in order)
    assert_never_more_lenient(token, alg)


@FUZZ
@given(
    alg=algorithms,
    target=st.sampled_from(["header", "claims"]),
    at=st.integers(min_value=0, max_value=400),
    inserted=st.binary(min_size=0, max_size=4),
    removed=st.integers(min_value=0, max_value=3),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-be", "utf-32"]),
)
def test_re_signed_raw_json_mutations_are_never_accepted_when_joserfc_refuses(
    alg: str, target: str, at: int, inserted: bytes, removed: int, encoding: str
) -> None:
    key = KEYS[alg]
    parts = {
        "header": json.dumps(header(key)).encode(encoding),
        "claims": json.dumps(claims()).encode(encoding),
    }
    raw = parts[target]
    at %= len(raw)
    parts[target] = raw[:at] + inserted + raw[at + removed :]
    token = forge(parts["header"], parts["claims"], key)
    assert_never_more_lenient(token, alg)


@settings(max_examples=100, deadline=None)
@given(
    alg=algorithms,
    subject=st.text(TEXT, min_size=1, max_size=20),
    roles=st.lists(st.text(TEXT, max_size=10), max_size=4),
    ttl=st.integers(min_value=LEEWAY + 1, max_value=86_400),
    handle=st.none() | st.text(TEXT, max_size=22),
    gen=st.integers(min_value=0, max_value=2**31),
    age=st.integers(min_value=0, max_value=LEEWAY),
)
def test_tokens_we_issue_are_accepted_by_joserfc_and_by_us(
    alg: str, subject: str, roles: list[str], ttl: int, handle: str | None, gen: int, age: int
) -> None:
    token, issued = issue_access_token(
        KEYS[alg],
        issuer=ISSUER,
        audience=AUDIENCE,
        subject=subject,
        roles=roles,
        now=NOW - age,
        ttl_seconds=ttl,
        handle=handle,
        gen=gen,
    )
    assert we_accept(token, alg) and joserfc_accepts(token, alg)
    verified = verify_access_token(token, RINGS[alg], issuer=ISSUER, audience=AUDIENCE, now=NOW)
    assert verified == issued


def test_the_oracle_refuses_what_it_should() -> None:
    # If joserfc accepted everything, the properties above could never fail.
    key = KEYS["EdDSA"]
    assert joserfc_accepts(forge(header(key), claims(), key), "EdDSA")
    assert not joserfc_accepts(forge(header(key), claims(exp=NOW - 3600), key), "EdDSA")
    assert not joserfc_accepts(forge(header(key), claims(aud="other"), key), "EdDSA")
    assert not joserfc_accepts(forge(header(key, typ="JWT"), claims(), key), "EdDSA")
    token = forge(header(key), claims(), key)
    assert not joserfc_accepts(token[:-4] + b64(b"\x00\x00\x00"), "EdDSA")
