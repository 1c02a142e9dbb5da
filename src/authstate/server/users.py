"""The demo accounts of ``authstate serve --demo``."""

from __future__ import annotations

import secrets

from authstate.accounts import Accounts
from authstate.errors import Conflict

# name, roles
DEMO_USERS: tuple[tuple[str, tuple[str, ...]], ...] = (("alice", ("admin",)), ("bob", ()))


async def create_demo_users(accounts: Accounts) -> dict[str, str]:
    """Create alice and bob with fresh random passwords and return ``{name: password}``.

    Users left from an earlier run (a persistent store) get new passwords: the old ones
    were printed once and are gone.
    """
    passwords: dict[str, str] = {}
    for name, roles in DEMO_USERS:
        password = secrets.token_urlsafe(12)
        try:
            await accounts.add_user(name, password, roles)
        except Conflict:
            user = await accounts.get_by_name(name)
            await accounts.set_password(user.id, password)
        passwords[name] = password
    return passwords
