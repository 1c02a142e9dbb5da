"""``Settings``: the one frozen, validated configuration object.

Values come from, in order of precedence: explicit arguments (CLI flags, keyword
arguments), then ``AUTHSTATE_*`` environment variables, then the defaults below.
``Settings.from_env`` is the only place in authstate that reads ``AUTHSTATE_*``.

Every field accepts its typed value or the string an environment variable would hold
(``access_ttl="15m"``, ``port="8080"``, ``fail_closed="yes"``); ``__post_init__``
converts and validates, and any bad value raises ``ConfigurationError`` with one line
that names the setting by its variable, e.g.
``AUTHSTATE_ACCESS_TTL: '15x' is not a duration (use 45s, 15m, 12h, 7d or seconds)``.

An ``AUTHSTATE_*`` variable that is not a setting is ignored; when its name is close to
a real one (a typo) a warning is logged on ``authstate.settings``.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, NoReturn, get_args

from authstate.errors import ConfigurationError
from authstate.principal import Mode

log = logging.getLogger("authstate.settings")

Algorithm = Literal["EdDSA", "ES256", "HS256"]

ENV_PREFIX = "AUTHSTATE_"
MIN_SECRET_BYTES = 32
# Browsers cap a cookie's lifetime at 400 days (RFC 6265bis §5.5); longer would be a lie.
MAX_DURATION = timedelta(days=400)
# A larger leeway keeps expired tokens alive; a longer grace weakens refresh-reuse detection.
MAX_LEEWAY = timedelta(minutes=5)
MAX_REFRESH_GRACE = timedelta(seconds=60)
# The request-head cap of `authstate serve`: below 8 KiB ordinary browsers break (a 4 KiB
# cookie plus the rest); above 1 MiB the cap stops protecting memory.
MIN_HEADER_BYTES = 8 * 1024
MAX_HEADER_BYTES = 1024 * 1024

_DURATION_HINT = "use 45s, 15m, 12h, 7d or seconds"
# ASCII digits only: int() and float() would also take '1_000', Arabic-Indic digits or '1e3'.
_DURATION_RE = re.compile(r"([0-9]{1,12})(?:\.([0-9]{1,6}))?([smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_TRUE = frozenset({"1", "true", "yes"})
_FALSE = frozenset({"0", "false", "no"})
_STORE_URL_RE = re.compile(r"[a-z][a-z0-9+.-]*://\S*")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_ORIGIN_RE = re.compile(
    rf"(https?)://({_LABEL}(?:\.{_LABEL})*|\[[0-9a-f:.]+\])(?::([0-9]{{1,5}}))?"
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
# A host name, ".name" (the name and every subdomain), a bracketed IPv6 address or "*".
_HOST_PATTERN_RE = re.compile(rf"\*|\.?{_LABEL}(?:\.{_LABEL})*|\[[0-9a-f:.]+\]")


def parse_duration(text: str) -> timedelta:
    """Parse ``45s``, ``15m``, ``12h``, ``7d`` or plain seconds (``90``, ``0.5``).

    Surrounding whitespace is ignored; units are lower case. Raises ``ValueError`` for an
    empty, negative or otherwise malformed text.
    """
    match = _DURATION_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a duration ({_DURATION_HINT})")
    whole, fraction, unit = match.groups()
    micros = int(whole) * 1_000_000 + int((fraction or "").ljust(6, "0"))
    try:
        return timedelta(microseconds=micros * _UNIT_SECONDS[unit])
    except OverflowError:
        raise ValueError(f"{text!r} is out of range") from None


def normalize_origin(text: str) -> str:
    """The canonical form of a web origin ``scheme://host[:port]``.

    Scheme and host are lower-cased and a default port (80 for http, 443 for https) is
    dropped, which is how browsers serialize the ``Origin`` header. Only ``http`` and
    ``https`` with a DNS name or a bracketed IPv6 address are accepted. Raises
    ``ValueError`` for anything else: a path or trailing slash, user info, a query,
    ``null``, ``*``, or a port outside 1-65535.
    """
    # ASCII first: str.lower() maps some non-ASCII letters (the Kelvin sign) to ASCII ones.
    match = _ORIGIN_RE.fullmatch(text.lower()) if text.isascii() else None
    if match is None:
        raise ValueError(f"{text!r} is not an origin (scheme://host[:port], no path)")
    scheme, host, port_text = match.groups()
    if port_text is None:
        return f"{scheme}://{host}"
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError(f"{text!r} has a port outside 1-65535")
    if port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _parse_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError(f"{value!r} is not a boolean (use 1/0, true/false or yes/no)")


def _to_duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        duration = value
    elif isinstance(value, str):
        duration = parse_duration(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or abs(value) > MAX_DURATION.total_seconds() * 2:
            raise ValueError(f"{value!r} is out of range")
        duration = timedelta(seconds=value)
    else:
        raise ValueError(f"{value!r} is not a duration ({_DURATION_HINT})")
    if duration < timedelta(0):
        raise ValueError(f"{value!r} is negative")
    return duration


def _to_int(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,9}", value.strip()):
        return int(value.strip())
    raise ValueError(f"{value!r} is not a whole number")


def _to_str(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a string")
    text = value.strip()
    if not text or not text.isprintable():
        raise ValueError(f"{value!r} must be non-empty printable text")
    return text


def _to_origins(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        items: Sequence[object] = [item.strip() for item in value.split(",") if item.strip()]
    elif isinstance(value, Sequence):
        items = value
    else:
        raise ValueError(f"{value!r} is not a comma-separated list of origins")
    origins: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"{item!r} is not an origin")
        origin = normalize_origin(item)
        if origin not in origins:
            origins.append(origin)
    return tuple(origins)


def _to_hosts(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        items: Sequence[object] = [item.strip() for item in value.split(",") if item.strip()]
    elif isinstance(value, Sequence):
        items = value
    else:
        raise ValueError(f"{value!r} is not a comma-separated list of host names")
    hosts: list[str] = []
    for item in items:
        host = item.strip().lower() if isinstance(item, str) and item.isascii() else None
        if host is None or not _HOST_PATTERN_RE.fullmatch(host):
            raise ValueError(
                f"{item!r} is not a host name (example.com, .example.com for subdomains too, "
                "an IP address, [::1] or *; no scheme or port)"
            )
        if host not in hosts:
            hosts.append(host)
    if not hosts:
        raise ValueError("must name at least one host (* allows any)")
    return tuple(hosts)


def _env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def _redact_url(url: str) -> str:
    # postgresql://user:password@host/db -> postgresql://user:***@host/db
    return re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", url)


@dataclass(frozen=True, slots=True, repr=False)
class Settings:
    """Validated settings; docs/deploy.md ("Settings") gives the meaning of each.

    Durations are ``timedelta``; the ``*_seconds`` properties give whole seconds (``int``),
    except ``max_staleness_seconds``, ``last_seen_interval_seconds`` and
    ``session_idle_seconds``, which may be fractional (``float``).
    """

    mode: Mode = "hybrid"
    store: str = "sqlite:///authstate.db"
    # Master secret (UTF-8 bytes of AUTHSTATE_SECRET, at least 32). Hidden in repr.
    secret: bytes | None = None
    secret_file: str | None = None
    access_ttl: timedelta = timedelta(minutes=15)
    session_ttl: timedelta = timedelta(days=7)
    idle_ttl: timedelta = timedelta(days=1)
    refresh_ttl: timedelta = timedelta(days=30)
    refresh_grace: timedelta = timedelta(seconds=10)
    algorithm: Algorithm = "EdDSA"
    # Empty: only the server's own origin (the server decides what that is).
    allowed_origins: tuple[str, ...] = ()
    # Host names the reference server answers for (Django's ALLOWED_HOSTS): others get 400.
    allowed_hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "[::1]")
    login_max_attempts: int = 10
    login_window: timedelta = timedelta(minutes=15)
    max_staleness: timedelta = timedelta(seconds=5)
    fail_closed: bool = False
    issuer: str = "authstate"
    audience: str = "authstate"
    host: str = "127.0.0.1"
    port: int = 8000
    leeway: timedelta = timedelta(seconds=30)
    # Minimum time between two last_seen writes of one session (capped at idle_ttl / 4:
    # see last_seen_interval_seconds).
    last_seen_interval: timedelta = timedelta(seconds=60)
    # Drops the Secure attribute and the __Host-/__Secure- prefixes: plain-HTTP testing
    # on a host other than localhost only (browsers accept Secure on http://localhost).
    unsafe_insecure_cookies: bool = False
    # Trust X-Forwarded-For / X-Forwarded-Proto: only behind a proxy that sets them.
    trust_forwarded: bool = False
    # Connection limits of `authstate serve`: a client gets this long for a request head
    # (from connecting, or from the request's first byte), for its body, and between two
    # requests on a kept-alive connection; heads over max_header_bytes get 431; requests
    # past max_connections open connections get 503.
    header_timeout: timedelta = timedelta(seconds=10)
    body_timeout: timedelta = timedelta(seconds=30)
    keepalive_timeout: timedelta = timedelta(seconds=5)
    max_header_bytes: int = 64 * 1024
    max_connections: int = 1000

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):
            converter = _CONVERTERS.get(spec.name)
            value = getattr(self, spec.name)
            if converter is None or (value is None and spec.default is None):
                continue
            try:
                converted = converter(value)
            except ValueError as exc:
                raise ConfigurationError(f"{_env_name(spec.name)}: {exc}") from None
            # Frozen: conversion happens once, here, before anyone can see the object.
            object.__setattr__(self, spec.name, converted)
        self._validate()

    def _validate(self) -> None:
        def fail(field_name: str, problem: str) -> NoReturn:
            raise ConfigurationError(f"{_env_name(field_name)}: {problem}")

        if self.mode not in get_args(Mode):
            fail("mode", f"{self.mode!r} is not a mode (use stateless, session or hybrid)")
        if self.algorithm not in get_args(Algorithm):
            fail("algorithm", f"{self.algorithm!r} is not supported (use EdDSA, ES256 or HS256)")
        if not _STORE_URL_RE.fullmatch(self.store):
            fail(
                "store",
                f"{_redact_url(self.store)!r} is not a store URL (e.g. sqlite:///authstate.db)",
            )
        if self.secret is not None and len(self.secret) < MIN_SECRET_BYTES:
            # Never echo the secret itself.
            fail("secret", f"must be at least {MIN_SECRET_BYTES} bytes (got {len(self.secret)})")
        if self.secret is not None and self.secret_file is not None:
            fail("secret_file", "set AUTHSTATE_SECRET or AUTHSTATE_SECRET_FILE, not both")
        for name in _POSITIVE:
            if getattr(self, name) <= timedelta(0):
                fail(name, "must be positive")
        for name in _DURATIONS:
            duration: timedelta = getattr(self, name)
            if duration > MAX_DURATION:
                fail(name, f"must be at most {MAX_DURATION.days}d")
            if name not in _FRACTIONAL and duration.microseconds:
                fail(name, f"must be a whole number of seconds (got {duration.total_seconds()}s)")
        if self.access_ttl > self.refresh_ttl:
            fail("access_ttl", "must not be longer than AUTHSTATE_REFRESH_TTL")
        if self.leeway > MAX_LEEWAY:
            fail("leeway", f"must be at most {int(MAX_LEEWAY.total_seconds())}s")
        if self.refresh_grace > MAX_REFRESH_GRACE:
            fail("refresh_grace", f"must be at most {int(MAX_REFRESH_GRACE.total_seconds())}s")
        if self.login_max_attempts < 1:
            fail("login_max_attempts", "must be at least 1")
        if not 1 <= self.port <= 65535:
            fail("port", f"{self.port} is outside 1-65535")
        if not MIN_HEADER_BYTES <= self.max_header_bytes <= MAX_HEADER_BYTES:
            fail("max_header_bytes", f"must be {MIN_HEADER_BYTES}-{MAX_HEADER_BYTES}")
        if self.max_connections < 1:
            fail("max_connections", "must be at least 1")

    def __repr__(self) -> str:
        parts = []
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            if spec.name == "secret" and value is not None:
                parts.append("secret=<hidden>")
            elif spec.name == "store":
                parts.append(f"store={_redact_url(value)!r}")
            else:
                parts.append(f"{spec.name}={value!r}")
        return f"Settings({', '.join(parts)})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``overrides``, then ``AUTHSTATE_*`` in ``environ``, then defaults.

        ``environ`` defaults to ``os.environ``. An override of ``None`` means "not given"
        (an unset CLI flag). Raises ``ConfigurationError`` for a bad value and
        ``TypeError`` for an override that is not a setting.
        """
        env = os.environ if environ is None else environ
        names = [spec.name for spec in dataclasses.fields(cls)]
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            hint = difflib.get_close_matches(unknown[0], names, n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
            raise TypeError(f"{unknown[0]!r} is not an authstate setting{suggestion}")
        _warn_unknown_variables(env, names)
        values: dict[str, Any] = {}
        for name in names:
            if overrides.get(name) is not None:
                values[name] = overrides[name]
            elif _env_name(name) in env:
                values[name] = env[_env_name(name)]
        return cls(**values)

    # -- whole seconds, for JWT claims, Max-Age and store expiries -------------------------
    @property
    def access_ttl_seconds(self) -> int:
        return int(self.access_ttl.total_seconds())

    @property
    def session_ttl_seconds(self) -> int:
        return int(self.session_ttl.total_seconds())

    @property
    def idle_ttl_seconds(self) -> int:
        return int(self.idle_ttl.total_seconds())

    @property
    def refresh_ttl_seconds(self) -> int:
        return int(self.refresh_ttl.total_seconds())

    @property
    def refresh_grace_seconds(self) -> int:
        return int(self.refresh_grace.total_seconds())

    @property
    def login_window_seconds(self) -> int:
        return int(self.login_window.total_seconds())

    @property
    def leeway_seconds(self) -> int:
        return int(self.leeway.total_seconds())

    @property
    def last_seen_interval_seconds(self) -> float:
        """Seconds between two ``last_seen`` writes of one session: ``last_seen_interval``,
        but never more than a quarter of ``idle_ttl`` (may be fractional). Use between two
        writes is not recorded, so with a longer interval a session in use would idle out;
        a session's idle window is ``idle_ttl`` plus this (see ``session_idle_seconds``)."""
        return min(self.last_seen_interval.total_seconds(), self.idle_ttl.total_seconds() / 4)

    @property
    def session_idle_seconds(self) -> float:
        """How long a session may go without a recorded use: ``idle_ttl`` plus the write
        interval. The last use may lie up to one interval after the last recorded one, so
        a session used at gaps shorter than ``idle_ttl`` never idles out, and one left
        alone dies between ``idle_ttl`` and ``idle_ttl`` + interval after its last use."""
        return self.idle_ttl.total_seconds() + self.last_seen_interval_seconds

    @property
    def max_staleness_seconds(self) -> float:
        """May be fractional: tests and latency-sensitive deployments use sub-second bounds."""
        return self.max_staleness.total_seconds()

    @property
    def cookie_secure(self) -> bool:
        """Whether cookies carry ``Secure`` (and the ``__Host-``/``__Secure-`` prefixes)."""
        return not self.unsafe_insecure_cookies


def _to_secret(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        # surrogateescape: os.environ decodes undecodable bytes that way; this restores them.
        return value.encode("utf-8", "surrogateescape")
    raise ValueError("must be text or bytes")


def _to_choice(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not text")
    return value.strip()


_DURATIONS = (
    "access_ttl",
    "session_ttl",
    "idle_ttl",
    "refresh_ttl",
    "refresh_grace",
    "login_window",
    "max_staleness",
    "leeway",
    "last_seen_interval",
    "header_timeout",
    "body_timeout",
    "keepalive_timeout",
)
_POSITIVE = (
    "access_ttl",
    "session_ttl",
    "idle_ttl",
    "refresh_ttl",
    "login_window",
    "max_staleness",
    "header_timeout",
    "body_timeout",
    "keepalive_timeout",
)
_FRACTIONAL = frozenset({"max_staleness", "header_timeout", "body_timeout"})
_CONVERTERS: dict[str, Any] = {
    "mode": _to_choice,
    "algorithm": _to_choice,
    "store": _to_str,
    "secret": _to_secret,
    "secret_file": _to_str,
    "allowed_origins": _to_origins,
    "allowed_hosts": _to_hosts,
    "login_max_attempts": _to_int,
    "fail_closed": _parse_bool,
    "issuer": _to_str,
    "audience": _to_str,
    "host": _to_str,
    "port": _to_int,
    "unsafe_insecure_cookies": _parse_bool,
    "trust_forwarded": _parse_bool,
    "max_header_bytes": _to_int,
    "max_connections": _to_int,
    **{name: _to_duration for name in _DURATIONS},
}
# Names people reach for that are not settings, with the one they want.
_HINTS = {"AUTHSTATE_COOKIE_SECURE": "AUTHSTATE_UNSAFE_INSECURE_COOKIES"}


def _warn_unknown_variables(env: Mapping[str, str], names: Sequence[str]) -> None:
    known = [_env_name(name) for name in names]
    for variable in env:
        if not variable.startswith(ENV_PREFIX) or variable in known:
            continue
        # Only near-misses are reported: other AUTHSTATE_* variables (test harness
        # settings, for instance) are legitimate and would make the warning noise.
        hint = _HINTS.get(variable) or next(
            iter(difflib.get_close_matches(variable, known, n=1, cutoff=0.85)), None
        )
        if hint is not None:
            log.warning(
                "%s is not an authstate setting and is ignored; did you mean %s?", variable, hint
            )
