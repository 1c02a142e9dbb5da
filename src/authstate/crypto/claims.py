"""The claims of an access token: what they are (``AccessClaims``), the checks every
verified token's claims pass, and the span of time in which those checks pass."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, NoReturn

from authstate._frozen import builder
from authstate.errors import InvalidToken

# Integers beyond I-JSON's safe range (RFC 7493 §2.2) mean different things to different
# parsers; an exp of 10**2999 would also never expire.
MAX_SAFE_INT: Final = 2**53 - 1

_REGISTERED_CLAIMS: Final = frozenset(
    {"iss", "aud", "sub", "iat", "nbf", "exp", "jti", "roles", "sid", "gen"}
)
_NO_EXTRA: Final[Mapping[str, object]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """The verified content of an access token. Times are integer Unix seconds.

    ``aud`` is the audience the token was accepted for; ``kid`` names the key that signed
    it; ``gen`` is the user's revocation generation at issue; ``extra`` holds any other
    claims, read-only.
    """

    iss: str
    aud: str
    sub: str
    iat: int
    nbf: int
    exp: int
    jti: str
    kid: str
    roles: tuple[str, ...]
    sid: str | None
    gen: int
    extra: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}), hash=False)


_new_access_claims = builder(AccessClaims)  # AccessClaims(...), positional, faster


def validity_window(
    claims: AccessClaims, *, leeway: int, max_age: int | None, retire_after: float | None
) -> tuple[float, float]:
    """The span ``[valid_from, valid_until)`` of Unix time in which ``check_claims`` (with the
    same ``leeway`` and ``max_age``) and the signing key (retiring at ``retire_after``)
    accept these claims again: a verified token needs no other time check while
    ``valid_from <= now < valid_until``. Keep it the exact complement of the time checks
    at the end of ``check_claims``.
    """
    # exp passes while now < exp + leeway; nbf and iat while now >= max(nbf, iat) - leeway
    # (exact in binary floating point for Unix times: integers added to or taken from now).
    valid_until = float(claims.exp + leeway)
    if max_age is not None:
        # max_age passes while now <= iat + max_age + leeway: the next float is the open bound.
        bound = math.nextafter(float(claims.iat + max_age + leeway), math.inf)
        valid_until = min(valid_until, bound)
    if retire_after is not None:
        # The key verifies while now <= retire_after: the next float is the open bound.
        valid_until = min(valid_until, math.nextafter(retire_after, math.inf))
    return float(max(claims.nbf, claims.iat) - leeway), valid_until


def check_claims(
    claims: dict[str, object],
    *,
    kid: str,
    issuer: str,
    audience: str,
    now: float,
    leeway: int,
    max_age: int | None,
) -> AccessClaims:
    """The checked claims of a token signed by key ``kid``; ``InvalidToken`` else (see
    ``jwt.verify_access_token`` for the rules)."""
    # Written out rather than through helpers: this runs on every first sight of a token.
    # type() rather than isinstance: bool is an int subclass, and true must not mean 1.
    get = claims.get
    iat, nbf, exp = get("iat"), get("nbf"), get("exp")
    if type(iat) is not int or not 0 <= iat <= MAX_SAFE_INT:
        _refuse_numeric_date("iat")
    if type(nbf) is not int or not 0 <= nbf <= MAX_SAFE_INT:
        _refuse_numeric_date("nbf")
    if type(exp) is not int or not 0 <= exp <= MAX_SAFE_INT:
        _refuse_numeric_date("exp")
    iss = get("iss")
    if iss != issuer or type(iss) is not str:
        raise InvalidToken(reason="wrong or missing iss")
    aud = get("aud")
    if not (
        (type(aud) is str and aud == audience)
        or (type(aud) is list and audience in aud and all(type(a) is str for a in aud))
    ):
        raise InvalidToken(reason="wrong or missing aud")
    sub, jti = get("sub"), get("jti")
    if type(sub) is not str or not sub:
        _refuse_non_empty_string("sub")
    if type(jti) is not str or not jti:
        _refuse_non_empty_string("jti")
    roles = get("roles", ())
    if type(roles) is not list:
        if roles != () or "roles" in claims:  # absent means none; anything else is refused
            raise InvalidToken(reason="roles is not a list of strings")
    else:
        for role in roles:  # a loop, not all(...): no generator for a role or two
            if type(role) is not str:
                raise InvalidToken(reason="roles is not a list of strings")
    sid = get("sid")
    if (sid is not None or "sid" in claims) and type(sid) is not str:
        raise InvalidToken(reason="sid is not a string")  # null too: absent says "none"
    gen = get("gen", 0)
    if type(gen) is not int or not 0 <= gen <= MAX_SAFE_INT:
        raise InvalidToken(reason="gen is not an int in [0, 2**53)")
    # The time checks; validity_window is their exact complement.
    if exp <= now - leeway:
        raise InvalidToken(reason="token expired")
    if nbf > now + leeway:
        raise InvalidToken(reason="token not valid yet (nbf)")
    if iat > now + leeway:
        raise InvalidToken(reason="token issued in the future (iat)")
    if max_age is not None and now - iat > max_age + leeway:
        raise InvalidToken(reason="token older than max_age")
    if claims.keys() <= _REGISTERED_CLAIMS:
        extra = _NO_EXTRA
    else:
        extra = MappingProxyType(
            {name: value for name, value in claims.items() if name not in _REGISTERED_CLAIMS}
        )
    return _new_access_claims(
        issuer, audience, sub, iat, nbf, exp, jti, kid, tuple(roles), sid, gen, extra
    )


def _refuse_numeric_date(name: str) -> NoReturn:
    raise InvalidToken(reason=f"{name} is missing or not an integer in [0, 2**53)")


def _refuse_non_empty_string(name: str) -> NoReturn:
    raise InvalidToken(reason=f"{name} is missing or not a non-empty string")


def auth_time_claim(claims: AccessClaims) -> int | None:
    """Step-up: the token's ``auth_time`` (Unix seconds of the last password check), or None
    when absent or not a JSON integer in [0, 2**53) (then the token is never "fresh"; only
    our own signing key can put it there, so a wrong type is not worth refusing the token)."""
    value = claims.extra.get("auth_time")
    return value if type(value) is int and 0 <= value <= MAX_SAFE_INT else None


def remember_claim(claims: AccessClaims) -> bool:
    """Remember-me: False only for a token carrying ``"rem": false``."""
    return claims.extra.get("rem") is not False
