"""``AllowedHosts``: answer only for the configured host names (pure ASGI).

The reference server builds absolute URLs and its own origin (the CSRF check) from the
``Host`` header, or from ``X-Forwarded-Host`` behind a trusted proxy; a request naming
any other host gets ``400 {"error": "invalid_host"}`` before anything else runs, as
Django does with ``ALLOWED_HOSTS``. Starlette's ``TrustedHostMiddleware`` is not used:
it answers in plain text, and its ``www_redirect`` builds a redirect from the Host.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from authstate.asgi.middleware import header
from authstate.asgi.responses import json_error
from authstate.asgi.websocket import can_deny_with_http, close_code

log = logging.getLogger("authstate.http")

# Addresses that mean "every interface": never a name a client puts into Host.
_WILDCARD_BINDS = frozenset({"0.0.0.0", "::", "[::]"})  # noqa: S104 - compared, never bound


def host_name(value: str) -> str:
    """The host of a ``Host`` header value, lower case, without port or trailing dot."""
    value = value.strip().lower()
    if value.startswith("["):  # [v6]:port
        end = value.find("]")
        return value[: end + 1] if end != -1 else value
    name = value.rsplit(":", 1)[0] if value.count(":") == 1 else value
    return name[:-1] if name.endswith(".") else name


def allowed_hosts(patterns: Iterable[str], bind_host: str) -> tuple[str, ...]:
    """The configured patterns, plus the address the server binds to when it is one
    address (``--host 192.0.2.7`` is reachable under that name out of the box)."""
    hosts = tuple(patterns)
    bind = bind_host.lower()
    if bind not in _WILDCARD_BINDS:
        bind = f"[{bind}]" if ":" in bind and not bind.startswith("[") else bind
        if bind not in hosts:
            hosts += (bind,)
    return hosts


def host_matches(host: str, patterns: Iterable[str]) -> bool:
    """``host`` is a pattern, or under a ``.domain`` pattern, or a pattern is ``*``."""
    if not host:
        return False
    for pattern in patterns:
        if pattern == "*" or host == pattern:
            return True
        if pattern.startswith(".") and (host.endswith(pattern) or host == pattern[1:]):
            return True
    return False


class AllowedHosts:
    def __init__(self, app: ASGIApp, *, hosts: tuple[str, ...], trust_forwarded: bool) -> None:
        self.app = app
        self.hosts = hosts
        self.trust_forwarded = trust_forwarded
        self._any = "*" in hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # WebSocket handshakes too: the Origin check of a handshake compares with this host.
        if scope["type"] not in ("http", "websocket") or self._any:
            await self.app(scope, receive, send)
            return
        # Check the host the app will take its origin from (see asgi.middleware.own_origin).
        value = header(scope, b"host") or ""
        if self.trust_forwarded:
            value = (header(scope, b"x-forwarded-host") or value).split(",")[0]
        host = host_name(value)
        if not host_matches(host, self.hosts):
            # The operator's clue when a real name is missing from AUTHSTATE_ALLOWED_HOSTS.
            log.info("host not in AUTHSTATE_ALLOWED_HOSTS: %r", host[:100])
            if scope["type"] == "websocket" and not can_deny_with_http(scope):
                await send({"type": "websocket.close", "code": close_code(400)})
                return
            response = json_error(400, "invalid_host", "this server does not answer for that host")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
