"""The ``/auth/*`` endpoints of docs/http.md: each method reads the request, calls one
``AuthState`` operation and writes the answer (docs/http.md is the contract).

Rules about credentials (whose refresh family a request may rotate, what a password
change revokes) live in ``AuthState``; CSRF on cookie-authenticated requests in
``AuthMiddleware``; refusals become answers in ``forms.answering_errors``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from authstate.asgi._body import is_form, read_fields, read_flag, read_form_field
from authstate.asgi.client import client_info
from authstate.asgi.forms import success
from authstate.asgi.middleware import (
    get_auth_value,
    get_principal,
    is_bearer_request,
    own_origin,
    token_was_stale,
)
from authstate.asgi.responses import NO_STORE, clear_credentials, set_credentials
from authstate.asgi.token_endpoint import token_response
from authstate.cookies import read_cookie
from authstate.csrf import CSRFEvidence
from authstate.errors import (
    AuthenticationError,
    InvalidRefresh,
    NotFound,
    StaleToken,
    StoreUnavailable,
)
from authstate.modes.client import ClientInfo
from authstate.modes.issued import IssuedCredentials
from authstate.modes.records import session_json
from authstate.principal import Principal

if TYPE_CHECKING:
    from authstate.auth import AuthCore

# A public session handle is 43 characters; anything much longer is not one of ours.
_MAX_HANDLE_CHARS = 64


def _require(request: Request) -> Principal:
    principal = get_principal(request)
    if principal is None:
        if token_was_stale(request):
            raise StaleToken(reason="roles changed since the token was issued")
        raise AuthenticationError(reason="no valid auth cookie")
    return principal


class AuthEndpoints:
    """The endpoints of one ``AuthState``, one method per route (``routes.auth_router``
    mounts them). Each method raises ``AuthStateError`` for a refusal."""

    def __init__(self, auth: AuthCore) -> None:
        self.auth = auth
        self.policy = auth.cookie_policy
        self.trust_forwarded = auth.settings.trust_forwarded

    # -- credentials ---------------------------------------------------------------------------
    async def login(self, request: Request) -> Response:
        """``POST /auth/login``: check the password, issue credentials as cookies."""
        auth = self.auth
        auth.csrf.check_login(
            origin=request.headers.get("origin"),
            sec_fetch_site=request.headers.get("sec-fetch-site"),
            own_origin=self._own_origin(request),
        )
        fields = await read_fields(request, ("username", "password"))
        remember = read_flag(request, "remember", default=True)
        client = self._client(request)
        # The events (login, login_failed, login_throttled) are AuthCore's: they fire for
        # an application's own login route too.
        user = await auth.verify_login(fields["username"], fields["password"], ip=client.ip)
        issued = await auth.login(
            user.id,
            user.roles,
            client=client,
            previous_auth=get_auth_value(request),
            remember=remember,
        )
        return self._issued(request, issued, user.username)

    async def refresh(self, request: Request) -> Response:
        """``POST /auth/refresh`` (hybrid): rotate the refresh cookie's family."""
        auth = self.auth
        if auth.settings.mode != "hybrid":
            raise NotFound("no refresh in this mode")
        value = self._refresh_cookie(request)
        csrf = await self._csrf_evidence(request)
        issued = await auth.refresh(value, bound_to=get_principal(request), csrf=csrf)
        return self._issued(request, issued, await self._username_of(issued.principal.user_id))

    async def logout(self, request: Request) -> Response:
        """``POST /auth/logout``: revoke this session, family or token; clear the cookies."""
        principal = _require(request)
        await self.auth.logout(principal)
        return self._logged_out(request)

    async def logout_all(self, request: Request) -> Response:
        """``POST /auth/logout-all``: revoke every credential of the user on every node."""
        principal = _require(request)
        await self.auth.logout_everywhere(principal.user_id)
        return self._logged_out(request)

    async def password(self, request: Request) -> Response:
        """``POST /auth/password``: every other credential dies; this browser gets new ones."""
        principal = _require(request)
        fields = await read_fields(request, ("current_password", "new_password"))
        issued = await self.auth.change_password(
            principal,
            fields["current_password"],
            fields["new_password"],
            client=self._client(request),
        )
        if is_bearer_request(request):
            # A header client keeps no cookie: its new credentials come as /auth/token's.
            return token_response(issued, now=self.auth.clock.now())
        response = success(request, None, 204)
        csrf_token = self.auth.csrf_token(issued.principal.binding)
        set_credentials(response, issued, self.policy, csrf_token=csrf_token)
        return response

    # -- who am I, where am I logged in -------------------------------------------------------
    async def me(self, request: Request) -> Response:
        """``GET /auth/me``: the principal, its session and its token."""
        return JSONResponse(await self.me_body(_require(request)), headers=NO_STORE)

    async def me_body(self, principal: Principal) -> dict[str, object]:
        """The body of ``GET /auth/me`` for ``principal`` (also the first /auth/ws message)."""
        session = None
        if principal.session is not None:
            session = {"id": principal.session.id, "expires_at": int(principal.session.expires_at)}
        token = None
        if principal.token is not None:
            token = {"iat": principal.token.iat, "exp": principal.token.exp}
        return {
            "user": await self._user_json(principal.user_id, principal.roles),
            "mode": principal.mode,
            "session": session,
            "token": token,
            "auth_time": principal.auth_time,
        }

    async def sessions(self, request: Request) -> Response:
        """``GET /auth/sessions`` (session, hybrid): the user's live sessions."""
        if self.auth.settings.mode == "stateless":
            raise NotFound("no sessions in stateless mode")
        return JSONResponse(await self.sessions_body(_require(request)), headers=NO_STORE)

    async def sessions_body(self, principal: Principal) -> dict[str, object]:
        """The body of ``GET /auth/sessions`` for ``principal`` (session, hybrid modes)."""
        current = principal.session.id if principal.session else None
        records = await self.auth.list_sessions(principal)
        return {"sessions": [session_json(record, current) for record in records]}

    async def delete_session(self, request: Request) -> Response:
        """``DELETE /auth/sessions/{handle}`` (also a form ``POST``): revoke one session."""
        if self.auth.settings.mode == "stateless":
            raise NotFound("no sessions in stateless mode")
        principal = _require(request)
        handle = request.path_params["handle"]
        if not isinstance(handle, str) or len(handle) > _MAX_HANDLE_CHARS:
            raise NotFound("no such session")
        await self.auth.revoke_session(principal, handle)
        return success(request, None, 204)

    # -- step-up and device control (docs/http.md) ---------------------------------------------
    async def reauth(self, request: Request) -> Response:
        """``POST /auth/reauth`` ``{"password"}``: check the caller's password again (throttled
        like a login), then new credentials stamped ``auth_time`` = now; the old session ID,
        refresh family or token dies on every node."""
        principal = _require(request)
        fields = await read_fields(request, ("password",))
        client = self._client(request)
        issued = await self.auth.reauthenticate(principal, fields["password"], client=client)
        return self._issued(request, issued, await self._username_of(principal.user_id))

    async def revoke_others(self, request: Request) -> Response:
        """``POST /auth/sessions/revoke-others``: sign out every other device (needs a
        password check within ``fresh_window``)."""
        principal = _require(request)
        issued = await self.auth.revoke_others(principal)
        response = success(request, None, 204)
        if issued is not None:  # stateless: the caller's token was replaced
            csrf_token = self.auth.csrf_token(issued.principal.binding)
            set_credentials(response, issued, self.policy, csrf_token=csrf_token)
        return response

    async def csrf(self, request: Request) -> Response:
        """``GET /auth/csrf``: a CSRF token for the caller's binding, also as the cookie."""
        principal = get_principal(request)
        token = self.auth.csrf_token(principal.binding if principal else "")
        response = JSONResponse({"csrf_token": token}, headers=NO_STORE)
        # Without remember-me the CSRF cookie, like the others, ends with the browser session.
        remember = principal is None or principal.remember
        max_age = self.auth.settings.session_ttl_seconds if remember else None
        response.headers.append("set-cookie", self.policy.csrf_cookie(token, max_age))
        return response

    # -- reading requests, writing answers ----------------------------------------------------
    def _own_origin(self, request: Request) -> str | None:
        return own_origin(request.scope, trust_forwarded=self.trust_forwarded)

    def _client(self, request: Request) -> ClientInfo:
        return client_info(request, trust_forwarded=self.trust_forwarded)

    def _refresh_cookie(self, request: Request) -> str:
        """The refresh cookie's value; ``InvalidRefresh`` when absent or unreadable."""
        try:
            value = read_cookie(request.headers.getlist("cookie"), self.policy.refresh_cookie_name)
        except AuthenticationError as exc:
            raise InvalidRefresh(reason=exc.reason) from exc
        if value is None:
            raise InvalidRefresh(reason="no refresh cookie")
        return value

    async def _csrf_evidence(self, request: Request) -> CSRFEvidence:
        token = request.headers.get("x-csrf-token")
        if token is None and is_form(request):
            token = await read_form_field(request, "csrf_token")
        return CSRFEvidence(
            method=request.method,
            origin=request.headers.get("origin"),
            sec_fetch_site=request.headers.get("sec-fetch-site"),
            token=token,
            own_origin=self._own_origin(request),
        )

    async def _user_json(self, user_id: str, roles: tuple[str, ...]) -> dict[str, object]:
        return {"id": user_id, "username": await self._username_of(user_id), "roles": list(roles)}

    async def _username_of(self, user_id: str) -> str | None:
        try:
            return await self.auth.accounts.username_of(user_id)
        except StoreUnavailable:
            # A JWT keeps verifying while the store is down; only the display name is lost.
            return None

    def _issued(
        self, request: Request, issued: IssuedCredentials, username: str | None
    ) -> Response:
        """The answer to a login or refresh: the body of docs/http.md and the cookies."""
        principal = issued.principal
        csrf_token = self.auth.csrf_token(principal.binding)
        user = {"id": principal.user_id, "username": username, "roles": list(principal.roles)}
        body: dict[str, object] = {
            "user": user,
            "mode": self.auth.settings.mode,
            "csrf_token": csrf_token,
            "expires_at": int(issued.expires_at),
        }
        response = success(request, body)
        set_credentials(response, issued, self.policy, csrf_token=csrf_token)
        return response

    def _logged_out(self, request: Request) -> Response:
        if is_bearer_request(request):
            # A header client holds no cookie of ours: nothing to clear in a browser.
            return Response(status_code=204, headers=NO_STORE)
        response = success(request, None, 204)
        clear_credentials(response, self.policy, refresh=self.auth.settings.mode == "hybrid")
        return response
