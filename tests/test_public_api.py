"""The public API is exactly what ``__all__`` lists, sorted, and every name imports."""

from __future__ import annotations

import inspect

import authstate


def test_all_is_sorted() -> None:
    assert authstate.__all__ == sorted(authstate.__all__)


def test_all_lists_every_public_name_and_nothing_else() -> None:
    public = {
        name
        for name, value in vars(authstate).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert public == set(authstate.__all__)


def test_an_own_login_route_needs_only_documented_asgi_functions() -> None:
    # What examples/fastapi_own_login.py and docs/quickstart.md use besides authstate.__all__;
    # each is documented in docs/api.md (tests/docs/test_api.py compares the signatures).
    from authstate.asgi.client import client_info
    from authstate.asgi.middleware import get_auth_value, get_principal, own_origin
    from authstate.asgi.responses import error_response, set_credentials

    for function in (
        client_info,
        get_auth_value,
        get_principal,
        own_origin,
        error_response,
        set_credentials,
    ):
        assert callable(function) and function.__doc__
