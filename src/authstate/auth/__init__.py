"""``AuthCore``: wires settings, store, keys, revocation state and the mode, without HTTP.

    auth = AuthState(mode="hybrid", store="sqlite:///authstate.db")
    await auth.start()
    issued = await auth.login(user.id, roles=user.roles)
    principal = await auth.authenticate(cookie_value)
    await auth.logout_everywhere(user.id)

The public ``authstate.AuthState`` is this core plus the ASGI entry points
(``auth.middleware()``, ``auth.routes()``, ``auth.require()``); it is defined in the ASGI
layer (``authstate.asgi.auth_state``), which imports this package and never the reverse.

``AuthCore`` is one class made of one part per job, each a private module of this package:
``_node`` (the settings, the running parts and their accessors, events, keys), ``_store_sync``
(the bus's changes, reconciliation, maintenance, health), ``_lifecycle`` (start, stop),
``_sign_in`` (login, password check, logout), ``_account_changes`` (disable, password reset
and change), ``_grants`` (live roles and claims), ``_devices`` (sessions, step-up, other
devices), ``_refresh`` (hybrid refresh) and ``_session_data`` (server-side session data).
"""

from __future__ import annotations

from authstate.auth._account_changes import AccountChanges
from authstate.auth._devices import DeviceControl
from authstate.auth._grants import Grants
from authstate.auth._lifecycle import Lifecycle
from authstate.auth._refresh import Refresh
from authstate.auth._session_data import SessionDataAccess
from authstate.auth._sign_in import SignIn

__all__ = ["AuthCore"]


class AuthCore(
    SignIn, AccountChanges, Grants, DeviceControl, Refresh, SessionDataAccess, Lifecycle
):
    """One node's authentication state, without HTTP. Create it once per process (as the
    public ``authstate.AuthState``); ``start()`` before use."""
