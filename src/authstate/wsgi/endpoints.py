"""The ``/auth/*`` endpoints of docs/http.md for WSGI adapters: the same operations of
``AuthCore``, the same bodies, statuses and cookies as ``authstate.asgi.endpoints``
(tests/wsgi/contract.py runs one black-box contract against both).

Each method takes the neutral request and the gate's ``Passage`` and returns a ``Reply``;
``answer`` turns an ``AuthStateError`` into its JSON error. Store work goes through the
process's loop thread (``SyncAuth.run``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from authstate.cookies import read_cookie
from authstate.crypto._json import StrictJSONError, loads_object
from authstate.csrf import CSRFEvidence
from authstate.errors import (
    AuthenticationError,
    AuthStateError,
    BadRequest,
    InvalidRefresh,
    NotFound,
    PayloadTooLarge,
    StoreUnavailable,
)
from authstate.modes.client import ClientInfo
from authstate.modes.records import session_json
from authstate.token_grants import (
    TOKEN_HEADERS,
    grant,
    not_a_form,
    parse_parameters,
    token_error,
)
from authstate.wsgi.gate import MAX_FORM_BYTES, Gate
from authstate.wsgi.http import (
    FORM_TYPE,
    HttpRequest,
    Reply,
    clear_credentials,
    error_reply,
    set_credentials,
    token_reply,
)

if TYPE_CHECKING:
    from authstate.modes.issued import IssuedCredentials
    from authstate.principal import Principal
    from authstate.wsgi.bridge import SyncAuth
    from authstate.wsgi.gate import Passage


MAX_BODY_BYTES = 16 * 1024
_MAX_HANDLE_CHARS = 64
MAX_USER_AGENT = 256
MAX_IP = 64
# A form's yes/no values, as asgi._body reads them (that module is Starlette's side).
FORM_TRUE = ("1", "on", "true", "yes")
FORM_FALSE = ("0", "off", "false", "no")

Handler = Callable[[HttpRequest, "Passage"], Reply]


def answer(handler: Callable[[], Reply]) -> Reply:
    """``handler()``, with a refusal (``AuthStateError``) turned into its JSON answer."""
    try:
        return handler()
    except AuthStateError as exc:
        if exc.status_code >= 500:
            log.warning("%s: %s", exc.code, exc.reason)
        else:
            log.info("%s: %s", exc.code, exc.reason)
        return error_reply(exc)


log = logging.getLogger("authstate.http")


def _require(passage: Passage) -> Principal:
    return Gate.required(passage)


def _success(request: HttpRequest, body: dict[str, object] | None, status: int = 200) -> Reply:
    """``303`` to ``/`` for a form post, else JSON (no body when None), as over ASGI."""
    if request.is_form:
        return Reply.redirect("/")
    if body is None:
        return Reply.empty(status)
    return Reply.json(body, status)


class SyncEndpoints:
    """The endpoints of one ``SyncAuth``; each method raises ``AuthStateError``."""

    def __init__(self, sync: SyncAuth) -> None:
        self.sync = sync
        self.core = sync.core
        self.policy = sync.core.cookie_policy
        self.trust_forwarded = sync.core.settings.trust_forwarded

    # -- credentials ---------------------------------------------------------------------------
    def login(self, request: HttpRequest, passage: Passage) -> Reply:
        core, sync = self.core, self.sync
        core.csrf.check_login(
            origin=request.header("origin"),
            sec_fetch_site=request.header("sec-fetch-site"),
            own_origin=request.own_origin(trust_forwarded=self.trust_forwarded),
        )
        fields = self._fields(request, ("username", "password"))
        remember = self._flag(request, "remember", default=True)
        client = self._client(request)
        # The audit lines are the core's lifecycle events (login, login_failed, ...).
        user = sync.run(core.verify_login(fields["username"], fields["password"], ip=client.ip))
        issued = sync.run(
            core.login(
                user.id,
                user.roles,
                client=client,
                previous_auth=passage.auth_value,
                remember=remember,
            )
        )
        return self._issued(request, issued, user.username)

    def refresh(self, request: HttpRequest, passage: Passage) -> Reply:
        core = self.core
        if core.settings.mode != "hybrid":
            raise NotFound("no refresh in this mode")
        value = self._refresh_cookie(request)
        token = request.header("x-csrf-token")
        if token is None and request.is_form:
            token = self._form(request, MAX_FORM_BYTES).get("csrf_token")
        csrf = CSRFEvidence(
            method=request.method,
            origin=request.header("origin"),
            sec_fetch_site=request.header("sec-fetch-site"),
            token=token,
            own_origin=request.own_origin(trust_forwarded=self.trust_forwarded),
        )
        issued = self.sync.run(core.refresh(value, bound_to=passage.principal, csrf=csrf))
        return self._issued(request, issued, self._username_of(issued.principal.user_id))

    def logout(self, request: HttpRequest, passage: Passage) -> Reply:
        principal = _require(passage)
        self.sync.run(self.core.logout(principal))
        return self._logged_out(request, passage)

    def logout_all(self, request: HttpRequest, passage: Passage) -> Reply:
        principal = _require(passage)
        self.sync.run(self.core.logout_everywhere(principal.user_id))
        return self._logged_out(request, passage)

    def password(self, request: HttpRequest, passage: Passage) -> Reply:
        principal = _require(passage)
        fields = self._fields(request, ("current_password", "new_password"))
        issued = self.sync.run(
            self.core.change_password(
                principal,
                fields["current_password"],
                fields["new_password"],
                client=self._client(request),
            )
        )
        if passage.bearer:
            # A header client keeps no cookie: its new credentials come as /auth/token's.
            return token_reply(issued, now=self.core.clock.now())
        reply = _success(request, None, 204)
        csrf_token = self.core.csrf_token(issued.principal.binding)
        set_credentials(reply, issued, self.policy, csrf_token=csrf_token)
        return reply

    # -- who am I, where am I logged in -------------------------------------------------------
    def me(self, request: HttpRequest, passage: Passage) -> Reply:
        principal = _require(passage)
        session = None
        if principal.session is not None:
            session = {"id": principal.session.id, "expires_at": int(principal.session.expires_at)}
        token = None
        if principal.token is not None:
            token = {"iat": principal.token.iat, "exp": principal.token.exp}
        body = {
            "user": {
                "id": principal.user_id,
                "username": self._username_of(principal.user_id),
                "roles": list(principal.roles),
            },
            "mode": principal.mode,
            "session": session,
            "token": token,
            "auth_time": principal.auth_time,  # step-up: as GET /auth/me of the ASGI routes
        }
        return Reply.json(body)

    def sessions(self, request: HttpRequest, passage: Passage) -> Reply:
        if self.core.settings.mode == "stateless":
            raise NotFound("no sessions in stateless mode")
        principal = _require(passage)
        current = principal.session.id if principal.session else None
        records = self.sync.run(self.core.list_sessions(principal))
        return Reply.json({"sessions": [session_json(record, current) for record in records]})

    def delete_session(self, request: HttpRequest, passage: Passage, handle: str) -> Reply:
        if self.core.settings.mode == "stateless":
            raise NotFound("no sessions in stateless mode")
        principal = _require(passage)
        if len(handle) > _MAX_HANDLE_CHARS:
            raise NotFound("no such session")
        self.sync.run(self.core.revoke_session(principal, handle))
        return _success(request, None, 204)

    # -- step-up and device control (docs/http.md) ---------------------------------------------
    def reauth(self, request: HttpRequest, passage: Passage) -> Reply:
        """``POST /auth/reauth`` ``{"password"}``: the core's ``reauthenticate`` (throttled
        like a login), then new credentials stamped ``auth_time`` = now."""
        principal = _require(passage)
        fields = self._fields(request, ("password",))
        client = self._client(request)
        issued = self.sync.run(
            self.core.reauthenticate(principal, fields["password"], client=client)
        )
        return self._issued(request, issued, self._username_of(principal.user_id))

    def revoke_others(self, request: HttpRequest, passage: Passage) -> Reply:
        """``POST /auth/sessions/revoke-others``: sign out every other device (needs a
        password check within ``fresh_window``)."""
        principal = _require(passage)
        issued = self.sync.run(self.core.revoke_others(principal))
        reply = _success(request, None, 204)
        if issued is not None:  # stateless: the caller's token was replaced
            csrf_token = self.core.csrf_token(issued.principal.binding)
            set_credentials(reply, issued, self.policy, csrf_token=csrf_token)
        return reply

    def csrf(self, request: HttpRequest, passage: Passage) -> Reply:
        principal = passage.principal
        token = self.core.csrf_token(principal.binding if principal else "")
        reply = Reply.json({"csrf_token": token})
        # Without remember-me the CSRF cookie, like the others, ends with the browser session.
        remember = principal is None or principal.remember
        max_age = self.core.settings.session_ttl_seconds if remember else None
        reply.headers.append(("Set-Cookie", self.policy.csrf_cookie(token, max_age)))
        return reply

    # -- POST /auth/token (bearer transport; RFC 6749) ---------------------------------------
    def token(self, request: HttpRequest, passage: Passage) -> Reply:
        """``POST /auth/token``: the grants of ``token_grants`` (shared with the ASGI route),
        credentials in the body, RFC 6749 errors; 404 without the bearer transport."""
        core = self.core
        if not core.settings.bearer_enabled:
            raise NotFound("no route for /auth/token")
        try:
            # A page on another site must not drive password guesses from its visitors'
            # browsers: the login's Origin / Sec-Fetch-Site rules.
            core.csrf.check_login(
                origin=request.header("origin"),
                sec_fetch_site=request.header("sec-fetch-site"),
                own_origin=request.own_origin(trust_forwarded=self.trust_forwarded),
            )
            if not request.is_form:
                raise not_a_form()
            parameters = parse_parameters(request.read_body(MAX_BODY_BYTES))
            issued = self.sync.run(
                grant(core, parameters, client=self._client(request), bound_to=passage.principal)
            )
        except Exception as exc:
            refusal = token_error(exc)
            if refusal is None:
                raise
            status, error, description, retry_after = refusal
            level = logging.WARNING if status >= 500 else logging.INFO
            log.log(level, "token request refused: %s: %s", error, exc)
            reply = Reply.json({"error": error, "error_description": description}, status)
            reply.headers = list(TOKEN_HEADERS.items())
            if retry_after is not None:
                reply.headers.append(("Retry-After", str(retry_after)))
            return reply
        return token_reply(issued, now=core.clock.now())

    # -- server-side session data (docs/http.md) ----------------------------------------------
    def session_data(self, request: HttpRequest, passage: Passage) -> Reply:
        """``GET`` / ``PATCH /auth/session/data``: the core's ``session_data`` and
        ``update_session_data`` (their rules, caps and stateless 404), as over ASGI: a
        patch member sets its key, ``null`` deletes it, other keys stay as stored."""
        principal = passage.principal
        if principal is None:
            raise AuthenticationError(reason="no valid auth cookie")
        core = self.core
        if request.method == "PATCH":
            patch = _read_patch(request, core.settings.session_data_max_bytes)
            changes = {key: value for key, value in patch.items() if value is not None}
            remove = [key for key, value in patch.items() if value is None]
            data = self.sync.run(core.update_session_data(principal, changes, remove=remove))
        else:
            data = self.sync.run(core.session_data(principal))
        return Reply.json({"data": data.to_dict()})

    # -- reading requests, writing answers ----------------------------------------------------
    def _client(self, request: HttpRequest) -> ClientInfo:
        """User-Agent (UTF-8, 256 characters at most) and IP, as ``asgi.client`` reads them."""
        ip = str(request.environ.get("REMOTE_ADDR") or "")
        if self.trust_forwarded:
            forwarded = request.header("x-forwarded-for")
            if forwarded:
                ip = forwarded.split(",")[-1].strip()
        agent = request.header("user-agent") or ""
        # PEP 3333 headers are latin-1 strings: recover the bytes the browser sent.
        agent = agent.encode("latin-1", "replace").decode("utf-8", "replace")[:MAX_USER_AGENT]
        return ClientInfo(user_agent=agent, ip=ip[:MAX_IP])

    def _refresh_cookie(self, request: HttpRequest) -> str:
        try:
            value = read_cookie(request.header("cookie"), self.policy.refresh_cookie_name)
        except AuthenticationError as exc:
            raise InvalidRefresh(reason=exc.reason) from exc
        if value is None:
            raise InvalidRefresh(reason="no refresh cookie")
        return value

    @staticmethod
    def _form(request: HttpRequest, limit: int) -> dict[str, str]:
        return dict(parse_qsl(request.read_body(limit).decode("latin-1")))

    @classmethod
    def _fields(cls, request: HttpRequest, names: tuple[str, ...]) -> dict[str, str]:
        """The named string fields of a JSON object or urlencoded form (``asgi._body``'s
        rules: other media types are refused, JSON is parsed strictly)."""
        data = cls._object(request)
        fields: dict[str, str] = {}
        for name in names:
            value = data.get(name)
            if not isinstance(value, str):
                raise BadRequest(f"field {name!r} must be a string")
            fields[name] = value
        return fields

    @classmethod
    def _flag(cls, request: HttpRequest, name: str, *, default: bool) -> bool:
        """An optional yes/no field, as ``asgi._body.read_flag`` reads it: a JSON boolean,
        or in a form ``1``/``on``/``true``/``yes`` or ``0``/``off``/``false``/``no`` (the
        last value wins); ``default`` when absent; ``BadRequest`` for anything else."""
        value = cls._object(request).get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and request.is_form:
            if value.lower() in FORM_TRUE:
                return True
            if value.lower() in FORM_FALSE:
                return False
        raise BadRequest(f"field {name!r} must be true or false")

    @staticmethod
    def _object(request: HttpRequest) -> dict[str, Any]:
        """The body as a JSON object or urlencoded form (read once: the adapter caches it)."""
        media_type = request.media_type
        if media_type not in ("application/json", FORM_TYPE):
            raise BadRequest("send JSON (Content-Type: application/json) or a form")
        declared = request.header("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
            raise PayloadTooLarge("request body too large")
        body = request.read_body(MAX_BODY_BYTES)
        data: Any
        if media_type == FORM_TYPE:
            try:
                data = dict(parse_qsl(body.decode("utf-8"), strict_parsing=False))
            except UnicodeDecodeError as exc:
                raise BadRequest("form body is not UTF-8") from exc
        else:
            try:
                data = loads_object(body)
            except StrictJSONError as exc:
                raise BadRequest("body must be a JSON object", reason=f"body: {exc}") from None
        if not isinstance(data, dict):
            raise BadRequest("body must be a JSON object")
        return data

    def _username_of(self, user_id: str) -> str | None:
        try:
            return self.sync.run(self.core.accounts.username_of(user_id))
        except StoreUnavailable:
            return None  # a JWT keeps verifying while the store is down; only the name is lost

    def _issued(
        self, request: HttpRequest, issued: IssuedCredentials, username: str | None
    ) -> Reply:
        principal = issued.principal
        csrf_token = self.core.csrf_token(principal.binding)
        body: dict[str, object] = {
            "user": {"id": principal.user_id, "username": username, "roles": list(principal.roles)},
            "mode": self.core.settings.mode,
            "csrf_token": csrf_token,
            "expires_at": int(issued.expires_at),
        }
        reply = _success(request, body)
        set_credentials(reply, issued, self.policy, csrf_token=csrf_token)
        return reply

    def _logged_out(self, request: HttpRequest, passage: Passage) -> Reply:
        if passage.bearer:
            # A header client holds no cookie of ours: nothing to clear in a browser.
            return Reply.empty(204)
        reply = _success(request, None, 204)
        clear_credentials(reply, self.policy, refresh=self.core.settings.mode == "hybrid")
        return reply


_PATCH_TYPES = ("application/json", "application/merge-patch+json")
# Room for a patch that sets values up to the cap and names as many keys to delete.
_PATCH_OVERHEAD_BYTES = 1024


def _read_patch(request: HttpRequest, cap: int) -> dict[str, Any]:
    """A session-data patch: a JSON object sent as JSON (what a cross-site "simple
    request" cannot send), at most twice the data cap (as ``asgi.session_data_endpoint``)."""
    if request.media_type not in _PATCH_TYPES:
        raise BadRequest("send a JSON object (Content-Type: application/json)")
    body = request.read_body(2 * cap + _PATCH_OVERHEAD_BYTES)
    try:
        return loads_object(body)
    except StrictJSONError as exc:
        raise BadRequest("body must be a JSON object", reason=f"body: {exc}") from None
