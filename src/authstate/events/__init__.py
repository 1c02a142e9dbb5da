"""Lifecycle events: typed records of what happened to a user's authentication state, and
the subscribers that hear them (``auth.subscribe(handler)``, ``@auth.on(LoginSucceeded)``).

Adding an event is one dataclass in ``types.py`` and one ``self.events.emit(...)`` line in
``AuthCore`` after the store write it reports.
"""

from authstate.events.audit import audit_log as audit_log
from authstate.events.dispatch import Subscriber as Subscriber
from authstate.events.dispatch import Subscribers as Subscribers
from authstate.events.types import ALL_EVENTS as ALL_EVENTS
from authstate.events.types import AuthEvent as AuthEvent
from authstate.events.types import KeyRotated as KeyRotated
from authstate.events.types import LoggedOut as LoggedOut
from authstate.events.types import LoggedOutEverywhere as LoggedOutEverywhere
from authstate.events.types import LoginFailed as LoginFailed
from authstate.events.types import LoginSucceeded as LoginSucceeded
from authstate.events.types import LoginThrottled as LoginThrottled
from authstate.events.types import PasswordChanged as PasswordChanged
from authstate.events.types import Refreshed as Refreshed
from authstate.events.types import RefreshReuseDetected as RefreshReuseDetected
from authstate.events.types import SessionEvicted as SessionEvicted
from authstate.events.types import SessionRevoked as SessionRevoked
from authstate.events.types import UserDisabled as UserDisabled

__all__ = [
    "ALL_EVENTS",
    "AuthEvent",
    "KeyRotated",
    "LoggedOut",
    "LoggedOutEverywhere",
    "LoginFailed",
    "LoginSucceeded",
    "LoginThrottled",
    "PasswordChanged",
    "RefreshReuseDetected",
    "Refreshed",
    "SessionEvicted",
    "SessionRevoked",
    "Subscriber",
    "Subscribers",
    "UserDisabled",
    "audit_log",
]
