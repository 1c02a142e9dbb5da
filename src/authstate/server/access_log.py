"""``AccessLog``: one structured log line per HTTP request (pure ASGI).

It logs the method, the path (never the query string, which could carry anything), the
status, the duration and the authenticated user id; never a header or a cookie.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authstate.asgi.middleware import PRINCIPAL_KEY
from authstate.principal import Principal

log = logging.getLogger("authstate.access")

_MAX_PATH_CHARS = 200


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers if the app raises before responding

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            # The auth middleware (inside us) put the principal into this same scope dict.
            principal = scope.get(PRINCIPAL_KEY)
            client = scope.get("client")
            # ";params" may carry whatever a client wrote there (a session ID, a token):
            # the log keeps only the route part of the path.
            path = scope["path"].split(";", 1)[0][:_MAX_PATH_CHARS]
            log.info(
                "%s %s %d",
                scope["method"],
                path,
                status,
                extra={
                    "event": "request",
                    "method": scope["method"],
                    "path": path,
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "ip": client[0] if client else None,
                    "user_id": principal.user_id if isinstance(principal, Principal) else None,
                },
            )
