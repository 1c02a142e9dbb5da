"""The one ``Set-Cookie`` writer and the strict ``Cookie`` reader.

Works on plain strings so the pure-ASGI middleware and any framework can use it.

Writing (``CookiePolicy``): secure defaults in the signature; ``Secure``, ``HttpOnly``
(except the CSRF cookie, which page scripts must read) and an explicit ``SameSite`` on
every cookie; never a ``Domain`` attribute, so a cookie is never shared with sibling
hosts. Clearing sends the same name, ``Path`` and attributes with ``Max-Age=0`` so the
browser matches and drops the cookie.

Reading (``read_cookie``): the exact, case-sensitive name only (browsers match the
``__Host-`` prefix case-insensitively now, older ones did not, and a sibling host could
set ``__host-authstate``); a name that appears twice is refused rather than picking one
(cookie tossing); the value verbatim, never unquoted or trimmed; sizes are capped.
There is deliberately no way to read a credential from a query string.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from authstate.errors import AuthenticationError

if TYPE_CHECKING:
    from authstate.settings import Settings

AUTH_COOKIE = "__Host-authstate"
REFRESH_COOKIE = "__Secure-authstate-refresh"
CSRF_COOKIE = "__Host-authstate-csrf"
# Cookie name + value, in bytes (ASVS 3.3.5); browsers drop larger cookies silently.
MAX_COOKIE_BYTES = 4096
# All Cookie headers of one request together, in bytes (the middleware uses the same cap).
MAX_COOKIE_HEADER_BYTES = 16 * 1024

# Names used with ``unsafe_insecure_cookies``: browsers refuse a __Host-/__Secure- cookie
# that is not Secure, so plain-HTTP testing needs unprefixed names.
_INSECURE_NAMES = ("authstate", "authstate-refresh", "authstate-csrf")
# RFC 6265 token: the characters a cookie name may hold.
_NAME_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# token68 (RFC 9110 §11.2) plus '.': covers base64url, JWTs and our CSRF tokens, and needs
# no quoting or escaping in a cookie.
_VALUE_RE = re.compile(r"[A-Za-z0-9\-._~+/=]+")
_PATH_RE = re.compile(r"/[A-Za-z0-9\-._~/]*")
_WHITESPACE = " \t"


@dataclass(frozen=True, slots=True)
class CookiePolicy:
    """How authstate's three cookies are written. Each method returns one ``Set-Cookie``
    header value; send each in its own header (never fold them with commas).

    Raises ``ValueError`` at construction for a name that is not an RFC 6265 token, a
    ``__Host-``/``__Secure-`` name without ``secure`` (browsers would refuse it) or a
    ``__Host-`` refresh name with a ``refresh_path`` other than ``/``.
    """

    auth_cookie_name: str = AUTH_COOKIE
    refresh_cookie_name: str = REFRESH_COOKIE
    csrf_cookie_name: str = CSRF_COOKIE
    # The refresh token travels only to /auth/... (refresh, logout), not with every request.
    refresh_path: str = "/auth"
    secure: bool = True

    def __post_init__(self) -> None:
        for name in (self.auth_cookie_name, self.refresh_cookie_name, self.csrf_cookie_name):
            if not _NAME_RE.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid cookie name")
            if not self.secure and name.lower().startswith(("__host-", "__secure-")):
                raise ValueError(f"{name!r} needs secure=True: browsers refuse it otherwise")
        if not _PATH_RE.fullmatch(self.refresh_path):
            raise ValueError(f"{self.refresh_path!r} is not a cookie path")
        if self.refresh_cookie_name.lower().startswith("__host-") and self.refresh_path != "/":
            raise ValueError("a __Host- cookie must have Path=/; use __Secure- for the refresh")

    @classmethod
    def from_settings(cls, settings: Settings) -> CookiePolicy:
        """The policy for ``settings``: the secure defaults, or unprefixed names without
        ``Secure`` when ``unsafe_insecure_cookies`` is set."""
        if settings.cookie_secure:
            return cls()
        auth, refresh, csrf = _INSECURE_NAMES
        return cls(
            auth_cookie_name=auth, refresh_cookie_name=refresh, csrf_cookie_name=csrf, secure=False
        )

    def auth_cookie(self, value: str, max_age: int | None) -> str:
        """``Path=/; HttpOnly; SameSite=Lax``: Lax so a top-level link into the app keeps
        the user logged in. ``max_age`` in seconds; None writes a browser-session cookie
        (no ``Max-Age``, no ``Expires``: remember-me off), as do the other writers.
        ``ValueError`` for an unsafe value."""
        return self._format(
            self.auth_cookie_name, value, max_age, "/", http_only=True, same_site="Lax"
        )

    def refresh_cookie(self, value: str, max_age: int | None) -> str:
        """``Path=/auth; HttpOnly; SameSite=Strict``: never sent on a cross-site request."""
        return self._format(
            self.refresh_cookie_name,
            value,
            max_age,
            self.refresh_path,
            http_only=True,
            same_site="Strict",
        )

    def csrf_cookie(self, value: str, max_age: int | None) -> str:
        """``Path=/; SameSite=Lax`` and not ``HttpOnly``: page scripts read it to echo it in
        ``X-CSRF-Token``. It is signed and bound to the auth state, so reading it is harmless."""
        return self._format(
            self.csrf_cookie_name, value, max_age, "/", http_only=False, same_site="Lax"
        )

    def clear_auth(self) -> str:
        return self._format(self.auth_cookie_name, "", 0, "/", http_only=True, same_site="Lax")

    def clear_refresh(self) -> str:
        return self._format(
            self.refresh_cookie_name, "", 0, self.refresh_path, http_only=True, same_site="Strict"
        )

    def clear_csrf(self) -> str:
        return self._format(self.csrf_cookie_name, "", 0, "/", http_only=False, same_site="Lax")

    def _format(
        self,
        name: str,
        value: str,
        max_age: int | None,
        path: str,
        *,
        http_only: bool,
        same_site: str,
    ) -> str:
        if max_age != 0 or value:
            # An empty value is only written by the clear_* methods (with Max-Age=0).
            if not isinstance(value, str) or not _VALUE_RE.fullmatch(value):
                raise ValueError(f"cookie {name} value is not cookie-safe (token68 characters)")
            if len(name) + len(value) > MAX_COOKIE_BYTES:
                raise ValueError(
                    f"cookie {name} would be {len(name) + len(value)} bytes; "
                    f"browsers drop cookies over {MAX_COOKIE_BYTES}"
                )
        if max_age is None:
            if not value:
                raise ValueError(f"cookie {name}: clearing needs Max-Age=0, not a session cookie")
            parts = [f"{name}={value}", f"Path={path}"]
        elif isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0:
            raise ValueError(f"cookie {name} Max-Age must be a non-negative integer (seconds)")
        else:
            parts = [f"{name}={value}", f"Max-Age={max_age}", f"Path={path}"]
        if self.secure:
            parts.append("Secure")
        if http_only:
            parts.append("HttpOnly")
        parts.append(f"SameSite={same_site}")
        return "; ".join(parts)


def read_cookie(cookie_header_values: Sequence[str] | str | None, name: str) -> str | None:
    """The value of cookie ``name`` from a request's ``Cookie`` header(s), or ``None``.

    ``cookie_header_values`` is one header value or all of them (HTTP/2 clients may split
    cookies over several headers). The name must match exactly and case-sensitively. The
    value is returned verbatim up to the next ``;``: our cookies are written as bare
    token68 text, so quotes or whitespace around a value are not unwrapped but left to
    fail as a credential (one credential, one spelling). An empty value counts as absent.
    Pairs without ``=`` are ignored; the whitespace separating pairs is skipped.

    Raises ``AuthenticationError`` (never anything else) when ``name`` appears more than
    once (cookie tossing), when its name and value exceed ``MAX_COOKIE_BYTES``, or when
    the headers together exceed ``MAX_COOKIE_HEADER_BYTES``. Sizes are counted in
    characters, which are bytes for headers decoded as latin-1 (as ASGI servers do).
    """
    if not name:
        raise ValueError("a cookie name is required")
    if cookie_header_values is None:
        return None
    headers: Sequence[str]
    if isinstance(cookie_header_values, str):
        headers = (cookie_header_values,)
        total = len(cookie_header_values)
    else:
        headers = cookie_header_values
        total = 0
        for header in headers:
            total += len(header)
    if total > MAX_COOKIE_HEADER_BYTES:
        raise AuthenticationError(reason="cookie header too large")
    # This runs on every request: find "name=" with str.find rather than splitting every
    # pair (which copies the whole header). An occurrence is the cookie only at the start
    # of a pair: nothing but the separator's whitespace since the previous ';'. So
    # 'name =v' is not 'name=v', and neither is a longer name or a value containing it.
    needle = name + "="
    found: str | None = None
    seen = False
    for header in headers:
        start = header.find(needle)
        while start != -1:
            if start:
                pair_start = header.rfind(";", 0, start) + 1
                if pair_start != start and header[pair_start:start].strip(_WHITESPACE):
                    start = header.find(needle, start + 1)  # inside another pair
                    continue
            if seen:
                raise AuthenticationError(reason=f"duplicate cookie {name}")
            seen = True
            end = header.find(";", start)
            if end == -1:
                end = len(header)
            value = header[start + len(needle) : end]
            if len(name) + len(value) > MAX_COOKIE_BYTES:
                raise AuthenticationError(reason=f"cookie {name} too large")
            found = value or None
            start = header.find(needle, end)
    return found
