"""Which credential a request carries, read from an ASGI scope's headers: the auth cookie
or, when the ``bearer`` transport is on, an ``Authorization: Bearer`` header.

Works on ``http`` and ``websocket`` scopes alike (it reads ``scope["headers"]`` only), so
every way into the application finds its credential by the same rules:

- the auth cookie is read by ``cookies.read_cookie`` (exact name, once); a duplicated
  cookie makes the request anonymous; a Cookie header over the cap is a 413;
- the header is read by ``bearer.read_bearer`` (strict ``Bearer <b64token>``) and only
  when ``AUTHSTATE_TRANSPORTS`` includes ``bearer``; otherwise it is ignored, as any
  header authstate does not own;
- a request with both a credential cookie (auth or refresh, even an unreadable one) and
  a Bearer header is refused with 400: which one was meant cannot be known, and picking
  one would let an attacker who plants a cookie (or a header) choose the account.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from starlette.types import Scope

from authstate.bearer import bearer_beside_cookie
from authstate.cookies import MAX_COOKIE_HEADER_BYTES, CookiePolicy, read_cookie
from authstate.errors import AuthenticationError, PayloadTooLarge

log = logging.getLogger("authstate.http")

Transport = Literal["cookie", "bearer"]
# What the auth and refresh cookies of a Cookie header are depends on nothing but its
# bytes, and a browser sends the same header on every request: remember the reading for
# this many distinct headers (emptied when full) of at most this many bytes each.
_READINGS_MAX_ENTRIES = 4096
_READINGS_MAX_HEADER_BYTES = 4096

# The credential a Cookie header holds, and why the header was refused (or None). Built
# once per distinct header and then reused: a request allocates nothing here.
_Reading = tuple["Credential", str | None]


@dataclass(frozen=True, slots=True)
class Credential:
    """What a request presents: ``value`` (a JWT or a session ID, None when anonymous),
    the ``transport`` it came by (None when there is none), and whether the request
    carries any of authstate's credential cookies (its response then varies by Cookie)."""

    value: str | None
    transport: Transport | None
    had_cookie: bool


_NONE = Credential(None, None, False)
_REFRESH_ONLY = Credential(None, None, True)  # a refresh cookie alone: anonymous, varies
_REFUSED = Credential(None, None, True)  # a duplicated or unreadable auth cookie


class CredentialReader:
    """Reads the one credential of a scope; one per middleware (it remembers readings of
    Cookie and Authorization headers, never a verdict: every request still authenticates)."""

    def __init__(self, policy: CookiePolicy, *, bearer: bool) -> None:
        self.policy = policy
        self.bearer = bearer
        self._readings: dict[bytes, _Reading] = {}
        # Well-formed Bearer headers read before (bounded as ``_readings``).
        self._tokens: dict[bytes, Credential] = {}

    def read(self, scope: Scope) -> Credential:
        """The scope's credential. Raises ``BadRequest`` (400) for a cookie and a Bearer
        header together, ``PayloadTooLarge`` (413) for Cookie headers over the cap."""
        # Every request comes here: one pass over the headers, one dict lookup for a
        # Cookie header (or, with the bearer transport, an Authorization header) seen
        # before. Several of either, both together, or one not seen yet take the general
        # path, ``_read_all``.
        raw = None
        authorization = None
        bearer = self.bearer
        for key, value in scope["headers"]:
            if key == b"cookie":
                if raw is not None:
                    return self._read_all(scope["headers"])
                raw = value
            elif bearer and key == b"authorization":
                if authorization is not None:
                    return self._read_all(scope["headers"])
                authorization = value
        if authorization is not None:
            if raw is None:  # a Bearer token seen before, and no cookie beside it
                credential = self._tokens.get(authorization)
                if credential is not None:
                    return credential
            return self._read_all(scope["headers"])
        if raw is None:
            return _NONE
        reading = self._readings.get(raw)
        if reading is not None and reading[1] is None:
            return reading[0]
        return self._cookie(raw)

    def _read_all(self, headers: list[tuple[bytes, bytes]]) -> Credential:
        raws: list[bytes] = []
        authorizations: list[bytes] = []
        bearer = self.bearer
        for key, raw in headers:
            if key == b"cookie":
                raws.append(raw)
            elif bearer and key == b"authorization":
                authorizations.append(raw)
        if len(raws) == 1:
            cookie = self._cookie(raws[0])
        elif raws:  # HTTP/2 clients may split cookies over several headers
            cookie = self._reading(self._read(raws))
        else:
            cookie = _NONE
        if not authorizations:
            return cookie
        values = [raw.decode("latin-1") for raw in authorizations]
        # The rule (Bearer only, strict, never beside a cookie) is shared with WSGI's gate.
        present, token = bearer_beside_cookie(values, had_cookie=cookie.had_cookie)
        if not present:
            return cookie
        credential = Credential(token, "bearer", False)
        if token is not None and len(authorizations) == 1:
            # What a lone Authorization header reads as depends on its bytes only: the
            # next request with it finds the token in read() (a refused one is not kept).
            raw = authorizations[0]
            if len(raw) <= _READINGS_MAX_HEADER_BYTES:
                if len(self._tokens) >= _READINGS_MAX_ENTRIES:
                    self._tokens.clear()
                self._tokens[raw] = credential
        return credential

    def _cookie(self, raw: bytes) -> Credential:
        """The credential of the request's one Cookie header (HTTP/1.1 always has one)."""
        reading = self._readings.get(raw)
        if reading is None:
            reading = self._read([raw])
            if len(raw) <= _READINGS_MAX_HEADER_BYTES:
                if len(self._readings) >= _READINGS_MAX_ENTRIES:
                    self._readings.clear()
                self._readings[raw] = reading
        if reading[1] is None:
            return reading[0]
        return self._reading(reading)

    @staticmethod
    def _reading(reading: _Reading) -> Credential:
        credential, refused = reading
        if refused is not None:
            # A duplicated or oversized auth cookie: anonymous, whatever the route is.
            log.info("auth cookie refused: %s", refused)
        return credential

    def _read(self, raws: list[bytes]) -> _Reading:
        """Read the auth and refresh cookies from the Cookie headers (``PayloadTooLarge``
        when together they exceed the cap). Whether a refresh cookie came counts: the
        answer then varies by Cookie, and it is a credential beside a Bearer header."""
        if sum(len(raw) for raw in raws) > MAX_COOKIE_HEADER_BYTES:
            raise PayloadTooLarge("cookie header too large")
        headers = [raw.decode("latin-1") for raw in raws]
        policy = self.policy
        try:
            had_refresh = read_cookie(headers, policy.refresh_cookie_name) is not None
            value = read_cookie(headers, policy.auth_cookie_name)
        except AuthenticationError as exc:
            return _REFUSED, exc.reason
        if value is None:
            return (_REFRESH_ONLY if had_refresh else _NONE), None
        return Credential(value, "cookie", True), None
