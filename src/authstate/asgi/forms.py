"""How an ``/auth/*`` endpoint answers both a JSON client and an HTML form post.

A form post (``application/x-www-form-urlencoded``, as the server's pages send) gets a
``303`` to ``/`` on success and, on a refusal, the page re-rendered by a ``FormRenderer``
with the status the JSON answer would have had (docs/http.md). Everything else gets JSON.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from authstate.asgi._body import is_form
from authstate.asgi.responses import NO_STORE, error_response
from authstate.errors import AuthStateError

Endpoint = Callable[[Request], Awaitable[Response]]
# Renders a page for a failed form post: (request, status, error code, message) -> Response.
FormRenderer = Callable[[Request, int, str, str], Awaitable[Response]]


def answering_errors(endpoint: Endpoint, form_renderer: FormRenderer | None) -> Endpoint:
    """``endpoint`` with every ``AuthStateError`` it raises turned into its answer: the
    page from ``form_renderer`` for a form post (when given), else the JSON error."""

    @functools.wraps(endpoint)
    async def answered(request: Request) -> Response:
        try:
            return await endpoint(request)
        except AuthStateError as exc:
            if form_renderer is not None and is_form(request):
                return await form_renderer(request, exc.status_code, exc.code, exc.detail)
            return error_response(exc)

    return answered


def success(request: Request, body: dict[str, object] | None, status: int = 200) -> Response:
    """The success answer: ``303`` to ``/`` for a form post, else ``body`` as JSON (no body
    when None) with ``status``; never cached."""
    if is_form(request):
        return RedirectResponse("/", status_code=303, headers=NO_STORE)
    if body is None:
        return Response(status_code=status, headers=NO_STORE)
    return JSONResponse(body, status, headers=NO_STORE)
