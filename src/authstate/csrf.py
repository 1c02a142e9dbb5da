"""CSRF defence: a signed double-submit token bound to the auth state, plus Origin and
Fetch Metadata checks. Works on plain header values; no web framework here.

The token is ``base64url(random) "." base64url(HMAC-SHA256(key, "csrf" 0 binding 0 random))``
where ``binding`` is the session handle or the access token's ``jti`` ("" before login).
An attacker who can plant cookies (a sibling subdomain) still cannot forge a token for
the victim's binding, which is what makes this double-submit safe (OWASP "signed
double-submit cookie"); a token from one session is worthless in another, and logging in
(a new binding) retires the pre-login token.

Policy for unsafe methods, in order:

1. ``Sec-Fetch-Site: cross-site`` is refused. ``same-site`` (a sibling host) is refused
   unless its ``Origin`` is explicitly in ``allowed_origins``.
2. An ``Origin`` header must be an allowed origin (exact scheme, host and port), or the
   server's own origin when ``allowed_origins`` is empty. ``Origin: null`` is refused.
3. The token must verify for the request's binding.

When ``Origin`` and ``Sec-Fetch-Site`` are both absent (non-browser clients send
neither) the token alone decides (security research §5.2, decision 4: token-only).
There is no ``Referer`` fallback: every browser that could be abused sends ``Origin`` on
unsafe requests, and the token is required regardless.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from authstate._time import Clock
from authstate.errors import ConfigurationError, CSRFError
from authstate.setting_values import normalize_origin

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
MIN_KEY_BYTES = 32
_RANDOM_BYTES = 16
_RANDOM_CHARS = 22  # base64url of 16 bytes, unpadded
_MAC_CHARS = 43  # base64url of 32 bytes, unpadded
TOKEN_LENGTH = _RANDOM_CHARS + 1 + _MAC_CHARS
_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True, slots=True)
class CSRFEvidence:
    """What one unsafe request shows for its CSRF check, as raw header values (see
    ``CSRFProtector.check_request``). The binding is not part of it: the server decides
    which binding the request must prove (``CSRFProtector.check``)."""

    method: str
    origin: str | None
    sec_fetch_site: str | None
    token: str | None
    own_origin: str | None


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class CSRFProtector:
    """Issues and checks CSRF tokens for one key and one list of allowed origins."""

    def __init__(self, key: bytes, *, allowed_origins: Sequence[str], clock: Clock) -> None:
        """``key``: at least 32 bytes, derived from the master secret for CSRF only.
        ``allowed_origins``: ``scheme://host[:port]`` each; empty means the server's own
        origin (passed per request). Raises ``ConfigurationError`` for a short key or a
        malformed origin."""
        if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
            raise ConfigurationError(f"the CSRF key must be at least {MIN_KEY_BYTES} bytes")
        origins: set[str] = set()
        for origin in allowed_origins:
            try:
                origins.add(normalize_origin(origin))
            except ValueError as exc:
                raise ConfigurationError(f"allowed origin: {exc}") from None
        self._key = key
        self._allowed = frozenset(origins)
        # Tokens carry no time: they expire with their binding (session, token jti). The
        # clock is held so that every component is built the same way.
        self._clock = clock

    @property
    def allowed_origins(self) -> frozenset[str]:
        """The configured origins, normalized."""
        return self._allowed

    def issue(self, binding: str) -> str:
        """A fresh token bound to ``binding`` (session handle, ``jti``, or "" before login)."""
        nonce = secrets.token_bytes(_RANDOM_BYTES)
        return _b64encode(nonce) + "." + _b64encode(self._mac(binding, nonce))

    def verify_token(self, token: str | None, binding: str) -> None:
        """Raise ``CSRFError`` unless ``token`` was issued by this key for ``binding``.

        The token's shape is checked strictly (length, alphabet, canonical base64url)
        before any decoding, and the MAC is compared in constant time."""
        if token is None or token == "":
            raise CSRFError("missing CSRF token", reason="no csrf token")
        if not isinstance(token, str) or len(token) != TOKEN_LENGTH:
            raise CSRFError("invalid CSRF token", reason="csrf token has the wrong length")
        nonce_text, dot, mac_text = (
            token[:_RANDOM_CHARS],
            token[_RANDOM_CHARS],
            token[_RANDOM_CHARS + 1 :],
        )
        if dot != "." or not _B64URL.issuperset(nonce_text) or not _B64URL.issuperset(mac_text):
            raise CSRFError("invalid CSRF token", reason="csrf token is malformed")
        nonce = base64.urlsafe_b64decode(nonce_text + "==")
        # Canonical form only: base64 ignores unused trailing bits, so several strings
        # would otherwise decode to one nonce.
        if _b64encode(nonce) != nonce_text:
            raise CSRFError("invalid CSRF token", reason="csrf token is not canonical base64url")
        expected = _b64encode(self._mac(binding, nonce))
        if not hmac.compare_digest(expected.encode("ascii"), mac_text.encode("ascii")):
            raise CSRFError("invalid CSRF token", reason="csrf token MAC or binding mismatch")

    def check_request(
        self,
        *,
        method: str,
        origin: str | None,
        sec_fetch_site: str | None,
        token: str | None,
        binding: str,
        own_origin: str | None,
    ) -> None:
        """Check an unsafe cookie-authenticated request; safe methods pass untouched.

        ``method`` is compared exactly (``"get"`` is not ``GET`` and counts as unsafe).
        ``origin``/``sec_fetch_site`` are the raw header values or ``None``; ``token`` is
        the ``X-CSRF-Token`` header or ``csrf_token`` form field, never the cookie.
        ``own_origin`` is ``scheme://host[:port]`` of this server as the client sees it.
        Raises ``CSRFError``.
        """
        if method in SAFE_METHODS:
            return
        self._check_headers(origin, sec_fetch_site, own_origin)
        self.verify_token(token, binding)

    def check(self, evidence: CSRFEvidence, binding: str) -> None:
        """``check_request`` for the ``evidence`` of one request against ``binding``.
        Raises ``CSRFError``."""
        self.check_request(
            method=evidence.method,
            origin=evidence.origin,
            sec_fetch_site=evidence.sec_fetch_site,
            token=evidence.token,
            binding=binding,
            own_origin=evidence.own_origin,
        )

    def check_login(
        self, *, origin: str | None, sec_fetch_site: str | None, own_origin: str | None
    ) -> None:
        """Login CSRF: the ``Origin`` and ``Sec-Fetch-Site`` rules of ``check_request``
        without the token, so JSON clients without cookies can log in. Raises ``CSRFError``."""
        self._check_headers(origin, sec_fetch_site, own_origin)

    def _check_headers(
        self, origin: str | None, sec_fetch_site: str | None, own_origin: str | None
    ) -> None:
        site = sec_fetch_site.strip().lower() if sec_fetch_site is not None else None
        if site == "cross-site":
            raise CSRFError("cross-site request refused", reason="Sec-Fetch-Site: cross-site")
        if origin is None:
            if site == "same-site":
                # Browsers send Origin on every unsafe cross-origin request; without it a
                # sibling host cannot be shown to be one we trust.
                raise CSRFError(
                    "cross-site request refused", reason="same-site request without Origin"
                )
            return
        try:
            normalized = normalize_origin(origin.strip())
        except ValueError:
            # Includes "null" (sandboxed frames, file:, some redirects) and garbage.
            raise CSRFError(
                "origin not allowed", reason=f"unusable Origin {origin[:100]!r}"
            ) from None
        if self._allowed:
            allowed = normalized in self._allowed
        else:
            allowed = own_origin is not None and normalized == _normalize_or_none(own_origin)
        if not allowed:
            raise CSRFError("origin not allowed", reason=f"Origin {normalized!r} is not allowed")
        if site == "same-site" and normalized not in self._allowed:
            # Same-site yet equal to our own origin cannot happen in a browser; refuse.
            raise CSRFError("cross-site request refused", reason="same-site origin not configured")

    def _mac(self, binding: str, nonce: bytes) -> bytes:
        # Domain-separated; the nonce has a fixed length, so the message parses one way only.
        message = b"csrf\x00" + binding.encode("utf-8", "surrogatepass") + b"\x00" + nonce
        return hmac.new(self._key, message, hashlib.sha256).digest()


def _normalize_or_none(origin: str) -> str | None:
    try:
        return normalize_origin(origin)
    except ValueError:
        return None
