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
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, NoReturn, get_args

from authstate.errors import ConfigurationError
from authstate.principal import Mode
from authstate.setting_values import (
    MAX_DURATION,
    redact_url,
    to_bool,
    to_choice,
    to_duration,
    to_hosts,
    to_int,
    to_origins,
    to_secret,
    to_str,
    to_transports,
)

log = logging.getLogger("authstate.settings")

Algorithm = Literal["EdDSA", "ES256", "HS256"]
# Access-token format of the JWT modes: signed (readable by the holder) or encrypted.
TokenFormat = Literal["jws", "jwe"]

ENV_PREFIX = "AUTHSTATE_"
MIN_SECRET_BYTES = 32
# A larger leeway keeps expired tokens alive; a longer grace weakens refresh-reuse detection.
MAX_LEEWAY = timedelta(minutes=5)
MAX_REFRESH_GRACE = timedelta(seconds=60)
# The request-head cap of `authstate serve`: below 8 KiB ordinary browsers break (a 4 KiB
# cookie plus the rest); above 1 MiB the cap stops protecting memory.
MIN_HEADER_BYTES = 8 * 1024
MAX_HEADER_BYTES = 1024 * 1024
# Session data: room for a few keys at least; at most 1 MiB, read on every access to it.
MIN_SESSION_DATA_BYTES = 64
MAX_SESSION_DATA_BYTES = 1024 * 1024
_STORE_URL_RE = re.compile(r"[a-z][a-z0-9+.-]*://\S*")


def _env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


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
    # `authstate serve` answers GET /metrics (Prometheus text; needs the `metrics` extra).
    metrics: bool = False
    # Connection limits of `authstate serve`: a client gets this long for a request head
    # (from connecting, or from the request's first byte), for its body, and between two
    # requests on a kept-alive connection; heads over max_header_bytes get 431; requests
    # past max_connections open connections get 503.
    header_timeout: timedelta = timedelta(seconds=10)
    body_timeout: timedelta = timedelta(seconds=30)
    keepalive_timeout: timedelta = timedelta(seconds=5)
    max_header_bytes: int = 64 * 1024
    max_connections: int = 1000
    # The most a session's server-side data may hold, as compact UTF-8 JSON (docs/api.md).
    session_data_max_bytes: int = 16 * 1024
    # jwe: access tokens are encrypted (compact JWE, dir + A256GCM), opaque to the client
    # and unreadable with the JWKS alone; stateless and hybrid modes only (docs/concepts.md).
    token_format: TokenFormat = "jws"  # noqa: S105  # a format name, not a secret
    # How credentials may travel: the auth cookie always; "bearer" adds the
    # Authorization: Bearer header and POST /auth/token for non-browser clients.
    transports: tuple[str, ...] = ("cookie",)
    # Step-up: how recent a password check must be to sign out other devices
    # (POST /auth/sessions/revoke-others, DELETE /auth/sessions/{another session}).
    fresh_window: timedelta = timedelta(minutes=5)
    # Concurrent sessions (refresh families in hybrid) per user; 0 = no cap. A login
    # beyond it evicts the oldest. Bounded by default: a client that logs in on every call
    # and never logs out would otherwise pile up a day's sessions on one account, and
    # every write to that user's sessions grows with their number (Redis keeps a user's
    # sessions together).
    max_sessions_per_user: int = 100

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
                f"{redact_url(self.store)!r} is not a store URL (e.g. sqlite:///authstate.db)",
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
        if not MIN_SESSION_DATA_BYTES <= self.session_data_max_bytes <= MAX_SESSION_DATA_BYTES:
            fail(
                "session_data_max_bytes",
                f"must be {MIN_SESSION_DATA_BYTES}-{MAX_SESSION_DATA_BYTES}",
            )
        if self.token_format not in get_args(TokenFormat):
            fail("token_format", f"{self.token_format!r} is not a token format (use jws or jwe)")
        if self.max_sessions_per_user < 0:
            fail("max_sessions_per_user", "must be 0 (no cap) or more")

    def __repr__(self) -> str:
        parts = []
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            if spec.name == "secret" and value is not None:
                parts.append("secret=<hidden>")
            elif spec.name == "store":
                parts.append(f"store={redact_url(value)!r}")
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
    def fresh_window_seconds(self) -> int:
        return int(self.fresh_window.total_seconds())

    @property
    def max_staleness_seconds(self) -> float:
        """May be fractional: tests and latency-sensitive deployments use sub-second bounds."""
        return self.max_staleness.total_seconds()

    @property
    def bearer_enabled(self) -> bool:
        """Whether ``Authorization: Bearer`` and ``POST /auth/token`` are on."""
        return "bearer" in self.transports

    @property
    def cookie_secure(self) -> bool:
        """Whether cookies carry ``Secure`` (and the ``__Host-``/``__Secure-`` prefixes)."""
        return not self.unsafe_insecure_cookies


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
    "fresh_window",
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
    "fresh_window",
)
_FRACTIONAL = frozenset({"max_staleness", "header_timeout", "body_timeout"})
_CONVERTERS: dict[str, Any] = {
    "mode": to_choice,
    "algorithm": to_choice,
    "store": to_str,
    "secret": to_secret,
    "secret_file": to_str,
    "allowed_origins": to_origins,
    "allowed_hosts": to_hosts,
    "login_max_attempts": to_int,
    "fail_closed": to_bool,
    "issuer": to_str,
    "audience": to_str,
    "host": to_str,
    "port": to_int,
    "unsafe_insecure_cookies": to_bool,
    "trust_forwarded": to_bool,
    "metrics": to_bool,
    "max_header_bytes": to_int,
    "max_connections": to_int,
    "session_data_max_bytes": to_int,
    "token_format": to_choice,
    "transports": to_transports,
    "max_sessions_per_user": to_int,
    **{name: to_duration for name in _DURATIONS},
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
