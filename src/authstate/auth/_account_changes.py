"""``AccountChanges``: changes to a user's account that end every session of the user on
every node: disabling the user, an administrator's password reset, the user's own password
change (and the fresh credentials the caller gets after it).
"""

from __future__ import annotations

from authstate.auth._node import Node
from authstate.errors import NotFound
from authstate.events import PasswordChanged, UserDisabled
from authstate.modes.client import ClientInfo
from authstate.modes.issued import IssuedCredentials
from authstate.principal import Principal


class AccountChanges(Node):
    """``disable_user``, ``set_password``, ``change_password`` and ``reissue``."""

    async def disable_user(self, user_id: str) -> None:
        """Refuse the user's logins from now on and revoke every session, refresh family and
        token they hold, on every node (T30). ``NotFound`` for an unknown user. Emits
        ``UserDisabled``."""
        if await self.store.update_user(user_id, disabled=True) is None:
            raise NotFound("no such user")
        await self.mode.logout_everywhere(user_id)
        self._emit(UserDisabled, user_id=user_id)

    async def set_password(self, user_id: str, password: str) -> None:
        """Set a built-in user's password (an administrator's reset: no current password)
        and revoke every session and token of the user, on every node. Emits
        ``PasswordChanged``. ``BadRequest`` for a weak password, ``NotFound``."""
        await self.accounts.set_password(user_id, password)
        await self.mode.logout_everywhere(user_id)
        self._emit(PasswordChanged, user_id=user_id)

    async def change_password(
        self,
        principal: Principal,
        current_password: str,
        new_password: str,
        *,
        client: ClientInfo | None = None,
    ) -> IssuedCredentials:
        """Change a built-in user's password, revoke every session and token of the user on
        every node, and return fresh credentials for the caller.

        Raises ``InvalidCredentials`` for a wrong ``current_password``, ``BadRequest`` for
        a weak ``new_password``, ``TooManyAttempts``, ``StoreUnavailable``."""
        await self.accounts.change_password(principal.user_id, current_password, new_password)
        await self.mode.logout_everywhere(principal.user_id)
        self._emit(PasswordChanged, user_id=principal.user_id)
        return await self.reissue(principal, client=client)

    async def reissue(
        self, principal: Principal, *, client: ClientInfo | None = None
    ) -> IssuedCredentials:
        """New credentials for a principal after ``logout_everywhere`` (password change),
        with its remember-me choice; they count as a fresh password check. Not a login:
        no event."""
        return await self.mode.login(
            principal.user_id,
            principal.roles,
            client=client or ClientInfo(),
            previous_auth=None,
            remember=principal.remember,
        )
