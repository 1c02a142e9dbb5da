"""A FastAPI dependency: ``Depends(auth.require(role="staff"))`` returns the ``Principal``.

It needs nothing from FastAPI itself: FastAPI injects Starlette's ``Request`` and renders
Starlette's ``HTTPException``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request

from authstate.asgi.middleware import get_principal
from authstate.principal import Principal


def require(role: str | None = None) -> Callable[[Request], Awaitable[Principal]]:
    """401 without a valid auth cookie, 403 when ``role`` is given and missing."""

    async def dependency(request: Request) -> Principal:
        principal = get_principal(request)
        if principal is None:
            raise HTTPException(401, "unauthenticated", headers={"Cache-Control": "no-store"})
        if role is not None and not principal.has_role(role):
            raise HTTPException(403, "forbidden")
        return principal

    return dependency
