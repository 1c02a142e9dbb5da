"""The Flask extension: one ``AuthCore`` per process behind a ``SyncAuth``.

    app = Flask(__name__)
    auth = AuthState(app, mode="session")          # or AuthState(...); auth.init_app(app)

    @app.get("/reports")
    @auth.require(role="staff")
    def reports(): return {"user": current_principal.user_id}

Every request passes the gate in ``before_request`` (principal on ``flask.g``, CSRF on
unsafe cookie-authenticated requests); the ``/auth/*`` endpoints are a blueprint.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import Blueprint, Flask, Response, g, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.local import LocalProxy

from authstate.auth import AuthCore
from authstate.errors import AuthStateError, PayloadTooLarge
from authstate.principal import Principal
from authstate.settings import Settings
from authstate.stores.base import Store
from authstate.wsgi.bridge import SyncAuth
from authstate.wsgi.endpoints import SyncEndpoints, answer
from authstate.wsgi.gate import Gate, Passage, check_fresh_argument
from authstate.wsgi.http import HttpRequest, Reply, error_reply

F = TypeVar("F", bound=Callable[..., Any])

_PASSAGE = "authstate_passage"


def get_principal() -> Principal | None:
    """The principal of the current request (None when anonymous)."""
    passage = g.get(_PASSAGE)
    return passage.principal if isinstance(passage, Passage) else None


# ``current_principal.user_id`` in a view; falsy when anonymous.
current_principal: Principal = cast(Principal, LocalProxy(get_principal))


def _read_body(limit: int) -> bytes:
    declared = request.content_length
    if declared is not None and declared > limit:
        raise PayloadTooLarge("request body too large")
    request.max_content_length = limit  # Werkzeug stops reading beyond it
    try:
        data = request.get_data(cache=True)
    except RequestEntityTooLarge:
        raise PayloadTooLarge("request body too large") from None
    if len(data) > limit:
        raise PayloadTooLarge("request body too large")
    return data


def _neutral() -> HttpRequest:
    return HttpRequest(request.method, request.path, request.environ, _read_body)


def to_response(reply: Reply) -> Response:
    response = Response(reply.body, status=reply.status, headers=reply.headers)
    if reply.content_type is None:
        del response.headers["Content-Type"]
    else:
        response.headers["Content-Type"] = reply.content_type
    return response


class AuthState:
    """authstate for one Flask application (or several, with ``init_app``)."""

    def __init__(
        self,
        app: Flask | None = None,
        settings: Settings | None = None,
        *,
        store: Store | str | None = None,
        url_prefix: str = "/auth",
        **overrides: Any,
    ) -> None:
        """``settings``/``store``/``overrides`` as for ``authstate.AuthState``: keyword
        settings over ``AUTHSTATE_*`` over the defaults. Nothing starts here: each process
        starts the core on its first request (after a fork, under gunicorn)."""
        self.core = AuthCore(settings, store=store, **overrides)
        self.sync = SyncAuth(self.core)
        self.url_prefix = url_prefix
        self.gate = Gate(self.sync, login_path=f"{url_prefix}/login")
        self.endpoints = SyncEndpoints(self.sync)
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        app.extensions["authstate"] = self
        app.before_request(self._before_request)
        app.after_request(self._after_request)
        app.register_blueprint(self.blueprint(), url_prefix=self.url_prefix)

    def start(self) -> None:
        """Start the core in this process now rather than on its first request (a script,
        a CLI command, a test). Never in a gunicorn master before it forks."""
        self.sync.ensure_started()

    def stop(self) -> None:
        self.sync.stop()

    def run(self, coro: Any) -> Any:
        """Run one of the core's coroutines (``auth.core.logout_everywhere(...)``) from a
        view: on the process's loop thread, like the endpoints do."""
        return self.sync.run(coro)

    def require(self, role: str | None = None, *, fresh: float | None = None) -> Callable[[F], F]:
        """A view decorator with the answers of the ASGI ``require``: 401 without a valid
        auth cookie (``token_stale`` for a token with outdated roles), 403 without
        ``role``, 401 ``reauth_required`` when ``fresh`` (seconds) is given and the last
        password check is older (step-up: ``POST /auth/reauth``)."""
        check_fresh_argument(fresh)

        def decorate(view: F) -> F:
            @functools.wraps(view)
            def guarded(*args: Any, **kwargs: Any) -> Any:
                passage = g.get(_PASSAGE)
                if not isinstance(passage, Passage):
                    passage = Passage(None, None, False)
                try:
                    self.gate.guard(passage, role=role, fresh=fresh)
                except AuthStateError as exc:
                    return to_response(error_reply(exc))
                return view(*args, **kwargs)

            return cast(F, guarded)

        return decorate

    # -- per request -----------------------------------------------------------------------
    def _before_request(self) -> Response | None:
        try:
            g.setdefault(_PASSAGE, None)
            setattr(g, _PASSAGE, self.gate.admit(_neutral()))
        except AuthStateError as exc:
            return to_response(error_reply(exc))
        return None

    def _after_request(self, response: Response) -> Response:
        passage = g.get(_PASSAGE)
        if isinstance(passage, Passage):
            if passage.had_cookie:
                response.vary.add("Cookie")
            if passage.challenge is not None and response.status_code == 401:
                response.headers.setdefault("WWW-Authenticate", passage.challenge)
        return response

    # -- the /auth/* endpoints ---------------------------------------------------------------
    def blueprint(self) -> Blueprint:
        """The ``/auth/*`` endpoints of docs/http.md (``init_app`` registers it)."""
        bp = Blueprint("authstate", __name__)
        endpoints = self.endpoints

        def view(handler: Callable[[HttpRequest, Passage], Reply]) -> Callable[[], Response]:
            def run() -> Response:
                passage = g.get(_PASSAGE)
                if not isinstance(passage, Passage):  # pragma: no cover - init_app wires it
                    raise RuntimeError("authstate's before_request did not run")
                return to_response(answer(lambda: handler(_neutral(), passage)))

            return run

        def delete_session(handle: str) -> Response:
            passage = g.get(_PASSAGE)
            if not isinstance(passage, Passage):  # pragma: no cover - init_app wires it
                raise RuntimeError("authstate's before_request did not run")
            return to_response(
                answer(lambda: endpoints.delete_session(_neutral(), passage, handle))
            )

        bp.add_url_rule("/login", "login", view(endpoints.login), methods=["POST"])
        bp.add_url_rule("/me", "me", view(endpoints.me), methods=["GET"])
        bp.add_url_rule("/refresh", "refresh", view(endpoints.refresh), methods=["POST"])
        bp.add_url_rule("/logout", "logout", view(endpoints.logout), methods=["POST"])
        bp.add_url_rule("/logout-all", "logout_all", view(endpoints.logout_all), methods=["POST"])
        bp.add_url_rule("/sessions", "sessions", view(endpoints.sessions), methods=["GET"])
        # Before /sessions/<handle> (Werkzeug prefers static parts anyway; keep it explicit).
        bp.add_url_rule(
            "/sessions/revoke-others",
            "revoke_others",
            view(endpoints.revoke_others),
            methods=["POST"],
        )
        bp.add_url_rule("/reauth", "reauth", view(endpoints.reauth), methods=["POST"])
        bp.add_url_rule(
            "/sessions/<handle>", "delete_session", delete_session, methods=["DELETE", "POST"]
        )
        bp.add_url_rule("/password", "password", view(endpoints.password), methods=["POST"])
        bp.add_url_rule("/csrf", "csrf", view(endpoints.csrf), methods=["GET"])
        bp.add_url_rule("/token", "token", view(endpoints.token), methods=["POST"])
        bp.add_url_rule(
            "/session/data",
            "session_data",
            view(endpoints.session_data),
            methods=["GET", "PATCH"],
        )
        return bp
