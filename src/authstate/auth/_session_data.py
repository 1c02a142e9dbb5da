"""``SessionDataAccess``: reading and updating the server-side data of the principal's
session (session mode) or refresh family (hybrid); ``authstate.session_data`` states the
rules.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from authstate.auth._node import Node
from authstate.principal import Principal
from authstate.session_data import SessionData, load_session_data, update_session_data


class SessionDataAccess(Node):
    """``session_data`` and ``update_session_data``."""

    async def session_data(self, principal: Principal) -> SessionData:
        """The data of the principal's session (session mode) or refresh family (hybrid),
        read from the store now. ``NotFound`` in stateless mode (there is no server-side
        session); ``AuthenticationError`` if the session ended; ``StoreUnavailable``."""
        return await load_session_data(self.store, principal, self.settings.session_data_max_bytes)

    async def update_session_data(
        self,
        principal: Principal,
        changes: Mapping[str, Any],
        *,
        remove: Collection[str] = (),
    ) -> SessionData:
        """Set ``changes`` and delete the keys ``remove`` in one atomic step (last writer wins
        per key); return the data as stored after it. ``TypeError``/``ValueError`` for a
        value that is not JSON and ``SessionDataTooLarge`` over the cap, both before any
        write; otherwise as ``session_data``."""
        return await update_session_data(
            self.store, principal, changes, remove, self.settings.session_data_max_bytes
        )
