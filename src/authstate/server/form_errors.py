"""``FormErrorPages``: a page, not JSON, for a form post refused before it reached a route.

The auth router renders its own failures for form posts (the ``form_renderer`` hook).
Some refusals happen earlier, in the auth middleware: a stale CSRF token (a page left
open across a new login), a form over the size cap, a store outage. A person who pressed
a button should read a message, not a JSON body, so for urlencoded posts under
``/auth/`` this pure-ASGI wrapper swaps a JSON error for the rendered page, keeping its
status code and ``Retry-After``. API clients sending JSON are untouched.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

FormRenderer = Callable[[Request, int, str, str], Awaitable[Response]]

_FORM = b"application/x-www-form-urlencoded"
# Form posts whose senders are programs, not people: POST /auth/token answers in RFC 6749's
# JSON, which a page would hide from them.
_PROGRAM_PATHS = frozenset({"/auth/token"})


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    return next((value for key, value in headers if key.lower() == name), None)


def _is_form_post(scope: Scope, prefix: str) -> bool:
    if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith(prefix):
        return False
    if scope["path"] in _PROGRAM_PATHS:
        return False
    content_type = _header(scope["headers"], b"content-type") or b""
    return content_type.split(b";")[0].strip().lower() == _FORM


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


class FormErrorPages:
    def __init__(self, app: ASGIApp, *, renderer: FormRenderer, prefix: str = "/auth/") -> None:
        self.app = app
        self.renderer = renderer
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _is_form_post(scope, self.prefix):
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        chunks: list[bytes] = []

        async def send_or_replace(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                content_type = _header(headers, b"content-type") or b""
                if message["status"] >= 400 and content_type.startswith(b"application/json"):
                    held = message  # wait for the body: it names the error
                    return
            elif message["type"] == "http.response.body" and held is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                page = await self._page(scope, held, b"".join(chunks))
                held = None
                await page(scope, _no_body, send)
                return
            await send(message)

        await self.app(scope, receive, send_or_replace)

    async def _page(self, scope: Scope, start: Message, body: bytes) -> Response:
        status = int(start["status"])
        try:
            error = json.loads(body)
            code, detail = str(error["error"]), str(error["detail"])
        except (ValueError, KeyError, TypeError):
            code, detail = "error", "The request was refused."
        page = await self.renderer(Request(scope), status, code, detail)
        retry_after = _header(list(start.get("headers", [])), b"retry-after")
        if retry_after is not None:
            page.headers["Retry-After"] = retry_after.decode("latin-1")
        return page
