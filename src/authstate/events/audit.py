"""The built-in audit log: a subscriber that writes each event to the
``authstate.audit`` logger (``authstate serve`` prints it as JSON lines).

Fields are the event's, with ``event`` set to its name; a session handle is written as
``sid`` (the server's log formatter drops any field named like a credential).
"""

from __future__ import annotations

import dataclasses
import logging

from authstate.events.types import AuthEvent, RefreshReuseDetected

audit = logging.getLogger("authstate.audit")

_MESSAGES = {
    "login": "login",
    "login_failed": "login failed",
    "login_throttled": "login throttled",
    "logout": "logout",
    "logout_all": "logout everywhere",
    "refresh": "refresh",
    "refresh_reuse": "refresh token reuse detected; family revoked",
    "session_revoked": "session revoked",
    "password_changed": "password changed",
    "user_disabled": "user disabled",
    "key_rotated": "signing key rotated",
}
_RENAMED = {"session_id": "sid"}


def audit_log(event: AuthEvent) -> None:
    """Log ``event`` on ``authstate.audit``: a warning for theft signs, info otherwise."""
    level = logging.WARNING if isinstance(event, RefreshReuseDetected) else logging.INFO
    if not audit.isEnabledFor(level):
        return
    extra: dict[str, object] = {"event": event.name}
    for field in dataclasses.fields(event):
        if field.name != "at":
            extra[_RENAMED.get(field.name, field.name)] = getattr(event, field.name)
    audit.log(level, _MESSAGES.get(event.name, event.name), extra=extra)
