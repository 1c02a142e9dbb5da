"""``Grants``: live roles and claims (docs/concepts.md, "Live roles"). Changing a user's roles
or custom claims in the store and publishing the change, so that every node refuses (or
re-reads) a credential that carries the old ones.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from authstate.accounts import check_roles
from authstate.auth._node import Node
from authstate.custom_claims import check_custom_claims
from authstate.errors import BadRequest
from authstate.stores.base import Change, ChangeKind, UserGrants

audit = logging.getLogger("authstate.audit")


class Grants(Node):
    """``set_roles`` and ``set_claims``."""

    async def set_roles(self, user_id: str, roles: tuple[str, ...] | list[str]) -> UserGrants:
        """Give ``user_id`` these roles from now on, on every node within the propagation
        bound and in every mode: sessions and refresh families change in place, access
        tokens carrying the old roles are refused with ``token_stale`` (the client
        refreshes, or logs in again in stateless mode). A built-in user's record is updated
        too; from now on the store's roles win over the ``roles`` passed to ``login``.

        Raises ``BadRequest`` for a bad role (``accounts.check_roles``), ``StoreUnavailable``."""
        checked = check_roles(roles)
        current = await self.store.get_user_grants(user_id)
        self._check_token_fits(user_id, checked, {} if current is None else current.claims)
        grants = await self.store.set_user_grants(user_id, roles=checked)
        await self.store.update_user(user_id, roles=checked)  # None for an application's user
        await self._publish_grants(grants)
        return grants

    async def set_claims(self, user_id: str, claims: Mapping[str, Any]) -> UserGrants:
        """Replace the user's custom claims (``Principal.claims``, and in the JWT modes the
        access token) like ``set_roles`` replaces roles. ``BadRequest`` unless a JSON object
        of at most ``MAX_CLAIMS_BYTES`` bytes without reserved names (``custom_claims``)."""
        checked = check_custom_claims(claims)
        current = await self.store.get_user_grants(user_id)
        if current is not None and current.roles is not None:
            roles: tuple[str, ...] = current.roles
        else:
            user = await self.store.get_user(user_id)
            roles = () if user is None else user.roles
        self._check_token_fits(user_id, roles, checked)
        grants = await self.store.set_user_grants(user_id, claims=checked)
        await self._publish_grants(grants)
        return grants

    def _check_token_fits(
        self, user_id: str, roles: tuple[str, ...], claims: Mapping[str, Any]
    ) -> None:
        # Roles and claims each fit alone, but not always together: refuse a change after
        # which no access token of the user would fit in a cookie (logins would fail).
        try:
            self.tokens.issue(
                user_id,
                roles,
                generation=2**53 - 1,
                handle="h" * 43,  # a hybrid token's sid
                claims=claims,
                roles_version=2**53 - 1,
            )
        except ValueError as exc:
            raise BadRequest("these roles and claims together exceed the token size cap") from exc

    async def _publish_grants(self, grants: UserGrants) -> None:
        # Nodes refuse (or re-read) what was written under an older version; the entry lives
        # as long as the longest credential that could carry one.
        ctx = self.context
        until = ctx.clock.now() + self.mode.longest_lifetime() + ctx.settings.leeway_seconds
        change = Change(ChangeKind.ROLES, grants.user_id, until, generation=grants.version)
        ctx.revocation.apply(await ctx.store.publish(change))
        # Roles are logged (who holds what is an audit question); claims only by name.
        audit.info(
            "roles or claims changed",
            extra={
                "event": "grants_changed",
                "user_id": grants.user_id,
                "roles_version": grants.version,
                "roles": None if grants.roles is None else list(grants.roles),
                "claim_names": sorted(grants.claims),
            },
        )
