"""``SignIn``: signing a user in and out. Authenticating a cookie value, issuing credentials
after a login, checking a built-in user's password, logging out here or everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authstate.auth._node import Node
from authstate.events import LoggedOut, LoggedOutEverywhere, LoginSucceeded
from authstate.modes.client import ClientInfo
from authstate.modes.issued import IssuedCredentials
from authstate.principal import Principal
from authstate.stores.base import UserRecord


class SignIn(Node):
    """Login, password check, authentication and logout."""

    async def authenticate(self, auth_value: str) -> Principal:
        """The principal behind an auth cookie value; ``AuthenticationError`` (401) or
        ``StoreUnavailable`` (503)."""
        return await self.mode.authenticate(auth_value)

    async def login(
        self,
        user_id: str,
        roles: tuple[str, ...] | list[str] = (),
        *,
        client: ClientInfo | None = None,
        previous_auth: str | None = None,
        data: Mapping[str, Any] | None = None,
        remember: bool = True,
    ) -> IssuedCredentials:
        """Issue fresh credentials for ``user_id`` (after the application checked who it is).

        The login counts as a password check (``auth_time`` = now). ``remember=False``
        makes the cookies browser-session cookies (no ``Max-Age``) for the whole life of
        this login, refreshes included; the server-side lifetime is the same either way.
        With ``max_sessions_per_user`` set, the user's oldest sessions beyond it are ended.
        Emits ``LoginSucceeded``."""
        client = client or ClientInfo()
        issued = await self.mode.login(
            user_id,
            tuple(roles),
            client=client,
            previous_auth=previous_auth,
            data=data,
            remember=remember,
        )
        session = issued.principal.session
        self._emit(
            LoginSucceeded,
            user_id=user_id,
            mode=self.settings.mode,
            session_id=session.id if session is not None else None,
            ip=client.ip or None,
            user_agent=client.user_agent or None,
        )
        return issued

    async def verify_login(self, username: str, password: str, *, ip: str = "") -> UserRecord:
        """Check a built-in user's password (throttled per account and per client IP);
        return the user. Emits ``LoginFailed`` or ``LoginThrottled`` on a refusal.

        Raises ``InvalidCredentials`` (the same for an unknown user, a wrong password and a
        disabled account), ``TooManyAttempts``, ``StoreUnavailable``."""
        with self._password_refusal_reported(ip):
            return await self.accounts.verify_login(username, password, ip=ip)

    async def logout(self, principal: Principal, *, refresh_value: str | None = None) -> None:
        """Revoke the principal's session, refresh family or token. Emits ``LoggedOut``."""
        await self.mode.logout(principal, refresh_value=refresh_value)
        session = principal.session
        self._emit(
            LoggedOut,
            user_id=principal.user_id,
            session_id=session.id if session is not None else None,
        )

    async def logout_everywhere(self, user_id: str) -> None:
        """Revoke every session and token of the user, on every node. Emits
        ``LoggedOutEverywhere``."""
        await self.mode.logout_everywhere(user_id)
        self._emit(LoggedOutEverywhere, user_id=user_id)
