"""The one reader of ``Authorization: Bearer`` (RFC 6750 §2.1), on plain strings.

Like ``cookies.read_cookie``, it is strict: the scheme is ``Bearer`` (any case, as RFC
9110 §11.1 says), then one space, then one ``b64token`` (letters, digits, ``-._~+/``,
trailing ``=``), nothing else; a request with two ``Authorization`` headers of which one
is a Bearer one is refused rather than picking one. Other schemes (``Basic``...) are not
authstate's and are ignored. The credential is never read from a query string or a form
field (RFC 6750 §2.2 and §2.3 are deliberately not supported: URLs end up in logs).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from authstate.errors import AuthenticationError, BadRequest

log = logging.getLogger("authstate.http")

# The answer to a request with both a credential cookie and a Bearer header (400): which
# one was meant cannot be known, and picking one would let whoever planted the other
# choose the account.
MIXED_CREDENTIALS = "send one credential: the auth cookie or Authorization: Bearer, not both"
# A JWT or a session ID is far shorter; the server's head cap bounds the rest.
MAX_BEARER_CHARS = 8 * 1024
_SCHEME = "bearer"
_B64TOKEN_RE = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# The scheme, however the rest is spaced: "Bearer\tx" is a malformed Bearer header (refused),
# not some other scheme (ignored).
_SCHEME_RE = re.compile(r"[ \t]*bearer(?:[ \t]|$)", re.IGNORECASE)


def is_bearer(value: str) -> bool:
    """Whether an ``Authorization`` value uses the Bearer scheme (well-formed or not)."""
    return _SCHEME_RE.match(value) is not None


def read_bearer(values: Sequence[str]) -> str | None:
    """The Bearer credential of a request's ``Authorization`` header values, or None when
    none of them is a Bearer one.

    Raises ``AuthenticationError`` (reason for the log) for a Bearer header that is not
    exactly ``Bearer <b64token>``, longer than ``MAX_BEARER_CHARS``, or sent beside
    another ``Authorization`` header."""
    bearer = [value for value in values if is_bearer(value)]
    if not bearer:
        return None
    if len(values) > 1:
        raise AuthenticationError(reason="several Authorization headers")
    value = bearer[0]
    if len(value) > MAX_BEARER_CHARS:
        raise AuthenticationError(reason="bearer token too long")
    scheme, _, token = value.partition(" ")
    if len(scheme) != len(_SCHEME) or not _B64TOKEN_RE.fullmatch(token):
        raise AuthenticationError(reason="malformed Authorization: Bearer header")
    return token


def bearer_beside_cookie(values: Sequence[str], *, had_cookie: bool) -> tuple[bool, str | None]:
    """The one rule for a request's ``Authorization`` values beside its cookies, for every
    server kind: ``(False, None)`` when none is a Bearer one (the cookie decides), else
    ``(True, token)`` with ``token`` None for a refused header (the request is then
    anonymous: no fallback to the cookie). Raises ``BadRequest`` (``MIXED_CREDENTIALS``)
    when a credential cookie (``had_cookie``, even an unreadable one) came too."""
    try:
        token = read_bearer(values)
    except AuthenticationError as exc:
        log.info("bearer header refused: %s", exc.reason)
        token, refused = None, True
    else:
        if token is None:  # another scheme (Basic...): not authstate's
            return False, None
        refused = False
    if had_cookie:
        raise BadRequest(MIXED_CREDENTIALS, reason="auth cookie and bearer header together")
    return True, None if refused else token
