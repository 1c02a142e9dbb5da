"""The token cache's validity window is the claim checks' time rules, not a second copy.

A cached token is served without re-running ``check_claims``: only while ``now`` lies in
``validity_window``. If the two ever disagreed, a token the cold path refuses (expired,
too old, not yet valid) could be served warm, or the reverse.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authstate.crypto.claims import check_claims, validity_window
from authstate.errors import InvalidToken
from tests.crypto.forge import AUDIENCE, ISSUER, NOW, claims

TIME_REFUSALS = {
    "token expired",
    "token not valid yet (nbf)",
    "token issued in the future (iat)",
    "token older than max_age",
}


def time_checks_pass(payload: dict[str, object], now: float, leeway: int, max_age: int) -> bool:
    try:
        check_claims(
            payload,
            kid="k",
            issuer=ISSUER,
            audience=AUDIENCE,
            now=now,
            leeway=leeway,
            max_age=max_age,
        )
    except InvalidToken as exc:
        assert exc.reason in TIME_REFUSALS  # the payload is otherwise valid
        return False
    return True


offsets = st.integers(min_value=-4000, max_value=4000)


@settings(max_examples=400, deadline=None)
@given(
    iat=offsets,
    nbf=offsets,
    lifetime=st.integers(min_value=1, max_value=3600),
    leeway=st.integers(min_value=0, max_value=120),
    max_age=st.integers(min_value=1, max_value=3600),
    at=st.integers(min_value=-5000, max_value=9000),
    fraction=st.sampled_from([0.0, 0.25, 0.5, 0.999]),
)
def test_the_window_holds_exactly_the_instants_the_claim_checks_accept(
    iat: int, nbf: int, lifetime: int, leeway: int, max_age: int, at: int, fraction: float
) -> None:
    payload = claims(iat=NOW + iat, nbf=NOW + nbf, exp=NOW + iat + lifetime)
    verified = check_claims(
        payload,
        kid="k",
        issuer=ISSUER,
        audience=AUDIENCE,
        now=NOW + iat,
        leeway=10**6,
        max_age=None,
    )
    valid_from, valid_until = validity_window(
        verified, leeway=leeway, max_age=max_age, retire_after=None
    )
    # Every bound of the window, the instants around it, and arbitrary ones.
    for now in (
        NOW + at + fraction,
        valid_from,
        math.nextafter(valid_from, -math.inf),
        valid_until,
        math.nextafter(valid_until, -math.inf),
    ):
        in_window = valid_from <= now < valid_until
        assert in_window == time_checks_pass(payload, now, leeway, max_age), now


def test_the_window_ends_when_the_signing_key_retires() -> None:
    verified = check_claims(
        claims(), kid="k", issuer=ISSUER, audience=AUDIENCE, now=NOW, leeway=30, max_age=900
    )
    _, until = validity_window(verified, leeway=30, max_age=900, retire_after=NOW + 10.0)
    # KeyRing.verification_key accepts the key while now <= retire_after.
    assert NOW + 10.0 < until == pytest.approx(NOW + 10.0)
    assert not math.nextafter(NOW + 10.0, math.inf) < until
