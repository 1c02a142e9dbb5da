"""The values of settings: parsing and checking one value at a time (durations, booleans,
whole numbers, origins, host lists, secrets), each raising ``ValueError`` with a message for
people. ``Settings`` (settings.py) applies them field by field and names the variable.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import timedelta

# Browsers cap a cookie's lifetime at 400 days (RFC 6265bis §5.5); longer would be a lie.
MAX_DURATION = timedelta(days=400)
_DURATION_HINT = "use 45s, 15m, 12h, 7d or seconds"
# ASCII digits only: int() and float() would also take '1_000', Arabic-Indic digits or '1e3'.
_DURATION_RE = re.compile(r"([0-9]{1,12})(?:\.([0-9]{1,6}))?([smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_TRUE = frozenset({"1", "true", "yes"})
_FALSE = frozenset({"0", "false", "no"})
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


def to_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError(f"{value!r} is not a boolean (use 1/0, true/false or yes/no)")


def to_duration(value: object) -> timedelta:
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


def to_int(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,9}", value.strip()):
        return int(value.strip())
    raise ValueError(f"{value!r} is not a whole number")


def to_str(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a string")
    text = value.strip()
    if not text or not text.isprintable():
        raise ValueError(f"{value!r} must be non-empty printable text")
    return text


def to_origins(value: object) -> tuple[str, ...]:
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


def to_hosts(value: object) -> tuple[str, ...]:
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


def to_secret(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        # surrogateescape: os.environ decodes undecodable bytes that way; this restores them.
        return value.encode("utf-8", "surrogateescape")
    raise ValueError("must be text or bytes")


def to_choice(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not text")
    return value.strip()


# The ways a credential may travel (settings.py's ``transports``): the auth cookie, and
# optionally an ``Authorization: Bearer`` header for clients without a cookie jar.
TRANSPORTS = ("cookie", "bearer")


def to_transports(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        items: Sequence[object] = [item.strip() for item in value.split(",") if item.strip()]
    elif isinstance(value, Sequence):
        items = value
    else:
        raise ValueError(f"{value!r} is not a comma-separated list of transports")
    transports: list[str] = []
    for item in items:
        name = item.strip().lower() if isinstance(item, str) else None
        if name not in TRANSPORTS:
            raise ValueError(f"{item!r} is not a transport (use cookie, or cookie,bearer)")
        if name not in transports:
            transports.append(name)
    if "cookie" not in transports:
        # The login form, the pages and /auth/login answer with cookies: a server that
        # ignored them would sign every browser out. Bearer is added beside the cookie.
        raise ValueError("must include cookie (use cookie, or cookie,bearer)")
    return tuple(transports)


def redact_url(url: str) -> str:
    # postgresql://user:password@host/db -> postgresql://user:***@host/db
    return re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", url)
