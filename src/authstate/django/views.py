"""The ``/auth/*`` endpoints as Django views, and ``require(role=...)`` for the app's own.

CSRF: these views are ``csrf_exempt`` for Django's ``CsrfViewMiddleware`` because
authstate's middleware already applied docs/http.md's CSRF rules to them (token bound to
the session, Origin, Sec-Fetch-Site; login by Origin and Sec-Fetch-Site)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed

from authstate.django.conf import parts
from authstate.django.http import neutral, to_response
from authstate.errors import AuthStateError
from authstate.principal import Principal
from authstate.wsgi.endpoints import SyncEndpoints, answer
from authstate.wsgi.gate import Passage, check_fresh_argument
from authstate.wsgi.http import HttpRequest as Neutral
from authstate.wsgi.http import Reply, error_reply

F = TypeVar("F", bound=Callable[..., Any])
V = TypeVar("V", bound=Callable[..., HttpResponse])


def _passage(request: HttpRequest) -> Passage:
    passage = getattr(request, "authstate", None)
    if not isinstance(passage, Passage):
        raise ImproperlyConfigured(
            "add 'authstate.django.middleware.AuthStateMiddleware' to MIDDLEWARE"
        )
    return passage


def get_principal(request: HttpRequest) -> Principal | None:
    """The authstate principal of ``request`` (None when anonymous)."""
    return _passage(request).principal


def require(role: str | None = None, *, fresh: float | None = None) -> Callable[[F], F]:
    """A view decorator with the answers of the ASGI ``require``: 401 JSON without a valid
    auth cookie (``token_stale`` for a token with outdated roles), 403 without ``role``,
    401 ``reauth_required`` when ``fresh`` (seconds) is given and the last password check
    is older (``@login_required`` redirects to a login page instead; both work)."""
    check_fresh_argument(fresh)

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            passage = _passage(request)
            try:
                parts()[1].guard(passage, role=role, fresh=fresh)
            except AuthStateError as exc:
                return to_response(error_reply(exc))
            return view(request, *args, **kwargs)

        return cast(F, guarded)

    return decorate


Handler = Callable[[SyncEndpoints, Neutral, Passage], Reply]


def _csrf_exempt(view: V) -> V:
    # What django.views.decorators.csrf.csrf_exempt does, without its untyped wrapper.
    view.csrf_exempt = True  # type: ignore[attr-defined]
    return view


def endpoint(handler: Handler, *methods: str) -> Callable[[HttpRequest], HttpResponse]:
    @_csrf_exempt
    def view(request: HttpRequest) -> HttpResponse:
        if request.method not in methods:
            return HttpResponseNotAllowed(methods)
        passage = _passage(request)
        endpoints = parts()[2]
        return to_response(answer(lambda: handler(endpoints, neutral(request), passage)))

    return view


login = endpoint(SyncEndpoints.login, "POST")
me = endpoint(SyncEndpoints.me, "GET", "HEAD")
refresh = endpoint(SyncEndpoints.refresh, "POST")
logout = endpoint(SyncEndpoints.logout, "POST")
logout_all = endpoint(SyncEndpoints.logout_all, "POST")
sessions = endpoint(SyncEndpoints.sessions, "GET", "HEAD")
password = endpoint(SyncEndpoints.password, "POST")
csrf = endpoint(SyncEndpoints.csrf, "GET", "HEAD")
reauth = endpoint(SyncEndpoints.reauth, "POST")
revoke_others = endpoint(SyncEndpoints.revoke_others, "POST")
token = endpoint(SyncEndpoints.token, "POST")
session_data = endpoint(SyncEndpoints.session_data, "GET", "HEAD", "PATCH")


@_csrf_exempt
def delete_session(request: HttpRequest, handle: str) -> HttpResponse:
    if request.method not in ("DELETE", "POST"):
        return HttpResponseNotAllowed(["DELETE", "POST"])
    passage = _passage(request)
    endpoints = parts()[2]
    return to_response(answer(lambda: endpoints.delete_session(neutral(request), passage, handle)))
