"""A FastAPI dependency: ``Depends(auth.require(role="staff"))`` returns the ``Principal``.

It needs nothing from FastAPI itself: FastAPI injects Starlette's ``HTTPConnection`` (the
``Request`` of an HTTP route, the ``WebSocket`` of a WebSocket route); the refusal is
rendered by ``AuthMiddleware`` (on a WebSocket route: before accept, ``asgi.websocket``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import HTTPConnection

from authstate._time import SystemClock
from authstate.asgi.middleware import get_principal, token_was_stale
from authstate.errors import AuthenticationError, PermissionDenied, ReauthRequired, StaleToken
from authstate.principal import Principal


def require(
    role: str | None = None, *, fresh: float | None = None, now: Callable[[], float] | None = None
) -> Callable[[HTTPConnection], Awaitable[Principal]]:
    """401 without a valid auth cookie, 403 when ``role`` is given and missing, and 401
    ``reauth_required`` when ``fresh`` (seconds) is given and the principal's last password
    check (``auth_time``) is older than that, or unknown (step-up: ``POST /auth/reauth``).
    ``now`` gives Unix seconds (default: the system clock).

    The refusal is an ``AuthStateError``, answered by ``AuthMiddleware`` with the body of
    the ``/auth/*`` routes (``{"error": "unauthenticated", "detail": ...}``), in FastAPI
    and Starlette alike."""

    if fresh is not None and (isinstance(fresh, bool) or fresh < 0):
        raise ValueError("fresh must be a number of seconds >= 0")
    now = now or SystemClock().now

    async def dependency(request: HTTPConnection) -> Principal:
        principal = get_principal(request)
        if principal is None:
            if token_was_stale(request):
                # The token carries roles from before a change: the client refreshes.
                raise StaleToken(reason="roles changed since the token was issued")
            raise AuthenticationError(reason="no valid auth cookie")
        if role is not None and not principal.has_role(role):
            raise PermissionDenied(f"the role {role!r} is required")
        if fresh is not None and not principal.authenticated_within(fresh, now=now()):
            raise ReauthRequired(reason=f"last password check older than {fresh}s")
        return principal

    return dependency
