"""The process's one ``SyncAuth``, built from ``settings.AUTHSTATE`` (a dict of authstate
settings, e.g. ``{"mode": "session", "store": "redis://..."}``) over the ``AUTHSTATE_*``
environment over the defaults. Built on first use, started by the first request."""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings as django_settings

from authstate.auth import AuthCore
from authstate.wsgi.bridge import SyncAuth
from authstate.wsgi.endpoints import SyncEndpoints
from authstate.wsgi.gate import Gate

# Where the URLconf is included; the login endpoint is the one unsafe route without a token.
DEFAULT_PREFIX = "/auth"

_lock = threading.Lock()
_built: tuple[SyncAuth, Gate, SyncEndpoints] | None = None


def _overrides() -> dict[str, Any]:
    configured = getattr(django_settings, "AUTHSTATE", None) or {}
    if not isinstance(configured, dict):
        raise TypeError("settings.AUTHSTATE must be a dict of authstate settings")
    return dict(configured)


def parts() -> tuple[SyncAuth, Gate, SyncEndpoints]:
    global _built
    built = _built
    if built is None:
        with _lock:
            built = _built
            if built is None:
                sync = SyncAuth(AuthCore(**_overrides()))
                prefix = str(getattr(django_settings, "AUTHSTATE_URL_PREFIX", DEFAULT_PREFIX))
                built = (sync, Gate(sync, login_path=f"{prefix}/login"), SyncEndpoints(sync))
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
