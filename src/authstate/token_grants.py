"""The framework-free part of ``POST /auth/token`` (RFC 6749), shared by the ASGI route
(``asgi.token_endpoint``) and the WSGI adapters (``wsgi.endpoints``): which parameters a
token request may carry, which grant runs which ``AuthCore`` operation, the §5.1 body and
the §5.2 error of each refusal. It adds no rule of its own: the password grant is the
login's check, the refresh grant is ``AuthCore.refresh``."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from authstate.errors import (
    AuthenticationError,
    AuthStateError,
    BadRequest,
    PayloadTooLarge,
    TooManyAttempts,
)

if TYPE_CHECKING:
    from authstate.auth import AuthCore
    from authstate.modes.client import ClientInfo
    from authstate.modes.issued import IssuedCredentials
    from authstate.principal import Principal

# RFC 6749 §5.1: "no-store" and, for HTTP/1.0 caches, "Pragma: no-cache".
TOKEN_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Content-Type-Options": "nosniff",
}
# The only parameters a token request may carry; §3.2 says none may be repeated.
_PARAMETERS = frozenset(
    {"grant_type", "username", "password", "refresh_token", "scope", "client_id"}
)
GRANT_DETAIL = "invalid username, password or refresh token"


class TokenRefused(Exception):
    """A refusal in the words of RFC 6749 §5.2 (``error`` is one of its codes)."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def parse_parameters(body: bytes) -> dict[str, str]:
    """The form parameters of a token request (§3.2: urlencoded, none repeated, an
    empty value counts as absent, unknown ones ignored)."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise TokenRefused("invalid_request", "the form is not UTF-8") from None
    parameters: dict[str, str] = {}
    for name, value in pairs:
        if name not in _PARAMETERS:
            continue
        if name in parameters:
            raise TokenRefused("invalid_request", f"{name} is repeated")
        parameters[name] = value
    return {name: value for name, value in parameters.items() if value}


def not_a_form() -> TokenRefused:
    return TokenRefused("invalid_request", "send application/x-www-form-urlencoded (RFC 6749 §4.3)")


async def grant(
    auth: AuthCore,
    parameters: dict[str, str],
    *,
    client: ClientInfo,
    bound_to: Principal | None,
) -> IssuedCredentials:
    """Run the grant ``parameters`` ask for. ``bound_to``: the principal of an access token
    sent beside a refresh grant (a family other than its own is refused)."""
    grant_type = parameters.get("grant_type")
    if grant_type is None:
        raise TokenRefused("invalid_request", "grant_type is required")
    if "scope" in parameters:
        raise TokenRefused("invalid_scope", "authstate issues no scopes")
    if grant_type == "password":
        username = _required(parameters, "username")
        password = _required(parameters, "password")
        # The audit lines are the core's lifecycle events (login, login_failed, ...).
        user = await auth.verify_login(username, password, ip=client.ip)
        return await auth.login(user.id, user.roles, client=client)
    if grant_type == "refresh_token" and auth.settings.mode == "hybrid":
        refresh_token = _required(parameters, "refresh_token")
        # The refresh token comes in the body, not in an ambient cookie: nothing to
        # forge. A Bearer (or cookie) access token sent beside it binds the family.
        return await auth.refresh(refresh_token, bound_to=bound_to)
    raise TokenRefused(
        "unsupported_grant_type", f"grant_type {grant_type[:40]!r} is not offered here"
    )


def _required(parameters: dict[str, str], name: str) -> str:
    value = parameters.get(name)
    if value is None:
        raise TokenRefused("invalid_request", f"{name} is required")
    return value


def token_body(issued: IssuedCredentials, *, now: float) -> dict[str, object]:
    """§5.1: the access token (a JWT, or the session ID in session mode), its lifetime in
    seconds and, in hybrid mode, the refresh token."""
    body: dict[str, object] = {
        "access_token": issued.auth_value,
        "token_type": "Bearer",
        "expires_in": max(0, int(issued.expires_at - now)),
    }
    if issued.refresh_value is not None:
        body["refresh_token"] = issued.refresh_value
    return body


def token_error(exc: Exception) -> tuple[int, str, str, int | None] | None:
    """The §5.2 answer to a refusal: ``(status, error, description, retry_after)``, or
    None for an exception that is no refusal (it goes on up)."""
    if isinstance(exc, TokenRefused):
        return exc.status, exc.error, exc.description, None
    if isinstance(exc, TooManyAttempts):
        return 429, exc.code, exc.detail, exc.retry_after
    if isinstance(exc, AuthenticationError):
        # Unknown user, wrong password, disabled account; unknown, expired, revoked or
        # reused refresh token: one answer (§5.2 invalid_grant), the reason to the log.
        return 400, "invalid_grant", GRANT_DETAIL, None
    if isinstance(exc, PayloadTooLarge):
        return 413, "invalid_request", exc.detail, None
    if isinstance(exc, BadRequest):
        return 400, "invalid_request", exc.detail, None
    if isinstance(exc, AuthStateError):
        # Cross-site (403 csrf_failed), store down (503): the codes of docs/http.md.
        return exc.status_code, exc.code, exc.detail, None
    return None
