"""The process's one ``SyncAuth``, built from ``settings.AUTHSTATE`` (a dict of authstate
settings, e.g. ``{"mode": "session", "store": "redis://..."}``) over the ``AUTHSTATE_*``
environment over the defaults. Built on first use, started by the first request."""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings as django_settings
from django.urls import NoReverseMatch, reverse

from authstate.auth import AuthCore
from authstate.wsgi.bridge import SyncAuth
from authstate.wsgi.endpoints import SyncEndpoints
from authstate.wsgi.gate import Gate

# The login endpoint is the one unsafe route without a CSRF token: where the URLconf put it.
DEFAULT_LOGIN_PATH = "/auth/login"

_lock = threading.Lock()
_built: tuple[SyncAuth, Gate, SyncEndpoints] | None = None


def _overrides() -> dict[str, Any]:
    configured = getattr(django_settings, "AUTHSTATE", None) or {}
    if not isinstance(configured, dict):
        raise TypeError("settings.AUTHSTATE must be a dict of authstate settings")
    return dict(configured)


def _login_path() -> str:
    try:
        return str(reverse("authstate:login"))
    except NoReverseMatch:  # the URLconf is not included: nothing to exempt but the default
        return DEFAULT_LOGIN_PATH


def parts() -> tuple[SyncAuth, Gate, SyncEndpoints]:
    global _built
    built = _built
    if built is None:
        with _lock:
            built = _built
            if built is None:
                sync = SyncAuth(AuthCore(**_overrides()))
                built = (sync, Gate(sync, login_path=_login_path()), SyncEndpoints(sync))
                _built = built
    return built


def get_auth() -> SyncAuth:
    """The process's ``SyncAuth``: ``get_auth().core`` is the ``AuthCore``,
    ``get_auth().run(coro)`` runs one of its operations from a view."""
    return parts()[0]


def reset() -> None:
    """Stop and forget the process's instance (tests, or settings changed at run time)."""
    global _built
    with _lock:
        if _built is not None:
            _built[0].stop()
        _built = None
