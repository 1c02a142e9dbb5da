"""The one exception tree of authstate.

    AuthStateError
    ├── ConfigurationError        a setting, store URL or key is unusable (at start)
    ├── AuthenticationError       no valid credentials -> 401 ``unauthenticated``
    │   ├── InvalidToken          a JWT failed the front layer, signature or claims
    │   │   └── StaleToken        a JWT carries roles/claims older than a change -> 401
    │   │                         ``token_stale`` (refresh, or log in again in stateless)
    │   ├── InvalidCredentials    wrong username or password -> 401
    │   ├── InvalidRefresh        unknown, expired or reused refresh token -> 401
    │   └── ReauthRequired        password check too old (step-up) -> 401 ``reauth_required``
    ├── PermissionDenied          authenticated but lacks a role -> 403 ``forbidden``
    ├── CSRFError                 CSRF token, Origin or Sec-Fetch-Site check failed -> 403
    ├── BadRequest                malformed input -> 400 ``bad_request``
    │   └── PayloadTooLarge       body over the cap -> 413 ``payload_too_large``
    │       └── SessionDataTooLarge   session data over its cap -> 413 ``session_data_too_large``
    ├── NotFound                  unknown resource (or another user's) -> 404 ``not_found``
    ├── Conflict                  a record that must be unique already exists -> 409 ``conflict``
    ├── TooManyAttempts           login throttled -> 429 (``retry_after`` in seconds)
    └── StoreUnavailable          the store or bus cannot answer now -> 503 ``store_unavailable``

"No valid credentials" and "cannot tell right now" are different errors all the way up:
a store never raises anything but ``StoreUnavailable`` for driver trouble.
``reason`` on an ``AuthenticationError`` is for the log only; clients see the code.
"""

from __future__ import annotations


class AuthStateError(Exception):
    """Base of every error authstate raises on purpose."""

    status_code: int = 500
    code: str = "internal_error"

    def __init__(self, detail: str = "", *, reason: str = "") -> None:
        super().__init__(detail or self.code)
        self.detail = detail or self.code.replace("_", " ")
        # Precise cause for the log; never sent to the client.
        self.reason = reason or self.detail


class ConfigurationError(AuthStateError):
    code = "configuration_error"


class AuthenticationError(AuthStateError):
    status_code = 401
    code = "unauthenticated"


class InvalidToken(AuthenticationError):
    pass


class StaleToken(InvalidToken):
    """An access token issued before the user's roles or claims changed (``set_roles``):
    the client refreshes (hybrid) or logs in again (stateless) to get the new ones."""

    code = "token_stale"


class InvalidCredentials(AuthenticationError):
    code = "invalid_credentials"


class InvalidRefresh(AuthenticationError):
    code = "invalid_refresh"


class ReauthRequired(AuthenticationError):
    """Step-up: the caller is authenticated, but their last password check is older than
    the operation allows; ``POST /auth/reauth`` (or a new login) makes it fresh again."""

    code = "reauth_required"


class PermissionDenied(AuthStateError):
    status_code = 403
    code = "forbidden"


class CSRFError(AuthStateError):
    status_code = 403
    code = "csrf_failed"


class BadRequest(AuthStateError):
    status_code = 400
    code = "bad_request"


class PayloadTooLarge(BadRequest):
    status_code = 413
    code = "payload_too_large"


class SessionDataTooLarge(PayloadTooLarge):
    """An update would make a session's data larger than ``AUTHSTATE_SESSION_DATA_MAX_BYTES``;
    nothing was written."""

    code = "session_data_too_large"


class NotFound(AuthStateError):
    status_code = 404
    code = "not_found"


class Conflict(AuthStateError):
    status_code = 409
    code = "conflict"


class TooManyAttempts(AuthStateError):
    status_code = 429
    code = "too_many_attempts"

    def __init__(self, retry_after: int, detail: str = "") -> None:
        super().__init__(detail or "too many attempts, try again later")
        self.retry_after = max(1, int(retry_after))


class StoreUnavailable(AuthStateError):
    status_code = 503
    code = "store_unavailable"
