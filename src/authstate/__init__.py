"""authstate: web authentication state for ASGI apps.

Stateless JWTs, server-side sessions and hybrid refresh tokens behind one API, verified
from process memory and revoked on every node through the store's bus.
"""

from authstate._time import Clock as Clock
from authstate._time import FrozenClock as FrozenClock
from authstate._time import SystemClock as SystemClock
from authstate.asgi.auth_state import AuthState as AuthState
from authstate.errors import AuthenticationError as AuthenticationError
from authstate.errors import AuthStateError as AuthStateError
from authstate.errors import BadRequest as BadRequest
from authstate.errors import ConfigurationError as ConfigurationError
from authstate.errors import Conflict as Conflict
from authstate.errors import CSRFError as CSRFError
from authstate.errors import InvalidCredentials as InvalidCredentials
from authstate.errors import InvalidRefresh as InvalidRefresh
from authstate.errors import InvalidToken as InvalidToken
from authstate.errors import NotFound as NotFound
from authstate.errors import PayloadTooLarge as PayloadTooLarge
from authstate.errors import PermissionDenied as PermissionDenied
from authstate.errors import ReauthRequired as ReauthRequired
from authstate.errors import SessionDataTooLarge as SessionDataTooLarge
from authstate.errors import StaleToken as StaleToken
from authstate.errors import StoreUnavailable as StoreUnavailable
from authstate.errors import TooManyAttempts as TooManyAttempts
from authstate.modes.client import ClientInfo as ClientInfo
from authstate.modes.issued import IssuedCredentials as IssuedCredentials
from authstate.principal import Principal as Principal
from authstate.principal import SessionInfo as SessionInfo
from authstate.principal import TokenInfo as TokenInfo
from authstate.session_data import SessionData as SessionData
from authstate.settings import Settings as Settings
from authstate.verifier import Verifier as Verifier

__all__ = [
    "AuthState",
    "AuthStateError",
    "AuthenticationError",
    "BadRequest",
    "CSRFError",
    "ClientInfo",
    "Clock",
    "ConfigurationError",
    "Conflict",
    "FrozenClock",
    "InvalidCredentials",
    "InvalidRefresh",
    "InvalidToken",
    "IssuedCredentials",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "Principal",
    "ReauthRequired",
    "SessionData",
    "SessionDataTooLarge",
    "SessionInfo",
    "Settings",
    "StaleToken",
    "StoreUnavailable",
    "SystemClock",
    "TokenInfo",
    "TooManyAttempts",
    "Verifier",
]
