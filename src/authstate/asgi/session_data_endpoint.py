"""``GET`` and ``PATCH /auth/session/data``: the caller's server-side session data as JSON
(docs/http.md). The rules are ``authstate.session_data``; CSRF on the ``PATCH`` is the
middleware's, as on every unsafe cookie-authenticated request.

A ``PATCH`` body is a JSON object applied one level deep, like a JSON merge patch (RFC 7396)
that does not descend: each member sets its key to the value, ``null`` deletes the key, and
keys not named stay as stored (last writer wins per key).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from authstate.asgi._body import read_body
from authstate.asgi.middleware import get_principal
from authstate.asgi.responses import NO_STORE
from authstate.crypto._json import StrictJSONError, loads_object
from authstate.errors import AuthenticationError, BadRequest
from authstate.session_data import SessionData

if TYPE_CHECKING:
    from authstate.auth import AuthCore

_PATCH_TYPES = ("application/json", "application/merge-patch+json")
# Room for a patch that sets values up to the cap and names as many keys to delete.
_OVERHEAD_BYTES = 1024


def session_data_endpoint(auth: AuthCore) -> Any:
    """The endpoint for ``/auth/session/data`` (``GET`` reads, ``PATCH`` updates)."""

    async def endpoint(request: Request) -> Response:
        principal = get_principal(request)
        if principal is None:
            raise AuthenticationError(reason="no valid auth cookie")
        if request.method == "PATCH":
            changes, remove = await _read_patch(request, auth.settings.session_data_max_bytes)
            data = await auth.update_session_data(principal, changes, remove=remove)
        else:
            data = await auth.session_data(principal)
        return _answer(data)

    return endpoint


async def _read_patch(request: Request, cap: int) -> tuple[dict[str, Any], list[str]]:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    # JSON under another type is what a cross-site "simple request" looks like: refused.
    if media_type not in _PATCH_TYPES:
        raise BadRequest("send a JSON object (Content-Type: application/json)")
    body = await read_body(request, limit=2 * cap + _OVERHEAD_BYTES)
    try:
        patch = loads_object(body)
    except StrictJSONError as exc:
        raise BadRequest("body must be a JSON object", reason=f"body: {exc}") from None
    changes = {key: value for key, value in patch.items() if value is not None}
    remove = [key for key, value in patch.items() if value is None]
    return changes, remove


def _answer(data: SessionData) -> Response:
    return JSONResponse({"data": data.to_dict()}, headers=NO_STORE)
