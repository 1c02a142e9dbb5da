"""``DeviceControl``: step-up and device control. Listing and revoking a user's sessions,
the password-freshness check, step-up (new credentials stamped as a fresh password check),
signing out every other device.
"""

from __future__ import annotations

from authstate.auth._node import Node
from authstate.errors import ReauthRequired
from authstate.events import SessionRevoked
from authstate.modes.client import ClientInfo
from authstate.modes.issued import IssuedCredentials
from authstate.principal import Principal
from authstate.stores.base import SessionRecord


class DeviceControl(Node):
    """Sessions, step-up and signing out other devices."""

    async def list_sessions(self, principal: Principal) -> list[SessionRecord]:
        return await self.mode.list_sessions(principal)

    async def revoke_session(self, principal: Principal, handle: str) -> None:
        """Revoke one of the principal's sessions. Another than its own needs a password
        check within ``fresh_window`` (``ReauthRequired``): a stolen cookie must not be
        able to sign its victim out of every other device. Emits ``SessionRevoked``."""
        if principal.session is None or handle != principal.session.id:
            self.require_fresh(principal, self.settings.fresh_window_seconds)
        await self.mode.revoke_session(principal, handle)
        self._emit(SessionRevoked, user_id=principal.user_id, session_id=handle)

    def require_fresh(self, principal: Principal, max_age_seconds: float) -> None:
        """Raise ``ReauthRequired`` unless the principal's password was checked within
        ``max_age_seconds`` (an unknown ``auth_time`` is never fresh)."""
        if not principal.authenticated_within(max_age_seconds, now=self.clock.now()):
            raise ReauthRequired(reason=f"last password check older than {max_age_seconds}s")

    async def step_up(self, principal: Principal) -> IssuedCredentials:
        """New credentials stamped ``auth_time`` = now, for a caller whose password the
        application has just checked itself: a new session ID / refresh family / token,
        the old one revoked on every node (fixation defence). ``reauthenticate`` is this
        with the built-in users' password check."""
        return await self.mode.step_up(principal)

    async def reauthenticate(
        self, principal: Principal, password: str, *, client: ClientInfo | None = None
    ) -> IssuedCredentials:
        """Step-up for a built-in user: check ``password`` (throttled like a login, by the
        same username and IP buckets), then ``step_up``.

        Raises ``InvalidCredentials``, ``TooManyAttempts``, ``AuthenticationError`` when the
        session was revoked meanwhile, ``StoreUnavailable``. A refusal emits ``LoginFailed``
        or ``LoginThrottled``, as a login's does."""
        ip = (client or ClientInfo()).ip
        with self._password_refusal_reported(ip):
            await self.accounts.verify_reauth(principal.user_id, password, ip=ip)
        return await self.step_up(principal)

    async def revoke_others(self, principal: Principal) -> IssuedCredentials | None:
        """Sign out every other device: every session/family of the user but the
        principal's own is revoked on every node. Needs a password check within
        ``fresh_window`` (``ReauthRequired``). In stateless mode every token of the user
        dies and the caller's replacement is returned (None elsewhere: nothing to set)."""
        self.require_fresh(principal, self.settings.fresh_window_seconds)
        return await self.mode.revoke_others(principal)
