"""authstate for Flask: ``AuthState(app)`` (or ``init_app``), ``current_principal``,
``@auth.require(role=...)`` and the ``/auth`` blueprint (docs/flask.md)."""

from authstate.flask.extension import AuthState, current_principal, get_principal

__all__ = ["AuthState", "current_principal", "get_principal"]
