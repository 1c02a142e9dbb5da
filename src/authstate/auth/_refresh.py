"""``Refresh``: rotating a hybrid refresh token (the operation behind ``POST /auth/refresh``
and the token endpoint's refresh grant), refused before anything changes when the refresh
family is not the caller's or the CSRF evidence does not match it (red team F3).
"""

from __future__ import annotations

from authstate.auth._node import Node
from authstate.crypto.ids import check_secret_format, hash_secret
from authstate.csrf import CSRFEvidence
from authstate.errors import AuthenticationError, InvalidRefresh, NotFound
from authstate.events import Refreshed
from authstate.modes.hybrid import HybridMode
from authstate.modes.issued import IssuedCredentials
from authstate.principal import Principal


class Refresh(Node):
    """``refresh`` and the checks that bind a refresh token to its caller."""

    async def refresh(
        self,
        refresh_value: str,
        *,
        bound_to: Principal | None = None,
        csrf: CSRFEvidence | None = None,
    ) -> IssuedCredentials:
        """Rotate a hybrid refresh token: new access token and successor refresh token.

        ``bound_to`` is the principal of the access cookie sent beside the refresh cookie,
        if any: a refresh family other than its own is refused. ``csrf`` is the request's
        CSRF evidence, checked against the family. Both are checked before anything
        changes, so a refused request rotates nothing (a token reused after the grace
        window still revokes its family: theft detection does not wait for them).

        Raises ``NotFound`` outside hybrid mode; ``InvalidRefresh`` for a malformed,
        unknown, expired, revoked or reused token (reuse outside the grace window also
        revokes the whole family) and for another principal's family; ``CSRFError``.
        """
        issued = await self._refresh(refresh_value, bound_to=bound_to, csrf=csrf)
        session = issued.principal.session
        self._emit(
            Refreshed,
            user_id=issued.principal.user_id,
            session_id=session.id if session is not None else None,
        )
        return issued

    async def _refresh(
        self, refresh_value: str, *, bound_to: Principal | None, csrf: CSRFEvidence | None
    ) -> IssuedCredentials:
        mode = self.mode
        if not isinstance(mode, HybridMode):
            raise NotFound("refresh exists only in hybrid mode")
        if bound_to is None and csrf is None:
            return await mode.refresh(refresh_value)
        try:
            check_secret_format(refresh_value)
        except AuthenticationError as exc:
            raise InvalidRefresh(reason=exc.reason) from exc
        family = await self.store.get_session(hash_secret(refresh_value))
        if family is not None:
            self._check_family(family.handle, bound_to, csrf)
            return await mode.refresh(refresh_value)
        # Not the current token: only a grace-window answer (which changes nothing in the
        # store) can follow, and it is checked against its family before it is returned.
        issued = await mode.refresh(refresh_value)
        self._check_family(issued.principal.binding, bound_to, csrf)
        return issued

    def _check_family(
        self, handle: str, bound_to: Principal | None, csrf: CSRFEvidence | None
    ) -> None:
        # An access cookie names its own family: rotate only that one, so a refresh cookie
        # planted beside it (a sibling host can set __Secure- cookies) is refused instead
        # of switching this browser into another account (red team F3).
        if bound_to is not None and (bound_to.session is None or bound_to.session.id != handle):
            raise InvalidRefresh(reason="refresh family is not the caller's")
        # Always bound to the family: with an access cookie the middleware checked the same
        # binding (its sid); without one (expired) this is the only check.
        if csrf is not None:
            self.csrf.check(csrf, handle)
