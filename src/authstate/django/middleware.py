"""``AuthStateMiddleware``: each request passes authstate's gate (principal, CSRF on unsafe
cookie-authenticated requests); ``request.user`` becomes the principal's user.

    MIDDLEWARE = [..., "django.contrib.auth.middleware.AuthenticationMiddleware",  # optional
                  "authstate.django.middleware.AuthStateMiddleware", ...]

Placed after Django's ``AuthenticationMiddleware`` (if any): a request with a valid
authstate cookie gets the authstate user; any other keeps the user Django found (a
``django.contrib.sessions`` login of the admin), or ``AnonymousPrincipalUser``.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_vary_headers

from authstate.django.conf import parts
from authstate.django.http import neutral, to_response
from authstate.django.users import AnonymousPrincipalUser, PrincipalUser
from authstate.errors import AuthStateError
from authstate.wsgi.http import error_reply

PASSAGE_ATTR = "authstate"


class AuthStateMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        _, gate, _ = parts()
        try:
            passage = gate.admit(neutral(request))
        except AuthStateError as exc:
            return to_response(error_reply(exc))
        setattr(request, PASSAGE_ATTR, passage)
        principal = passage.principal
        if principal is not None:
            request.user = PrincipalUser(principal)
        elif not hasattr(request, "user"):
            request.user = AnonymousPrincipalUser()
        response = self.get_response(request)
        if passage.had_cookie:
            patch_vary_headers(response, ("Cookie",))
        if passage.challenge is not None and response.status_code == 401:
            # RFC 6750 §3: a 401 names the scheme a header client should use.
            response.headers.setdefault("WWW-Authenticate", passage.challenge)
        return response
