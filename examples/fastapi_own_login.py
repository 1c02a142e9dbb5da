"""A FastAPI app that keeps its own users and only hands the "who is this?" part to authstate.

Its ``POST /login`` checks the password against the application's own table, then asks
authstate for credentials and writes them as cookies. Everything after that (the
middleware, ``auth.require``, ``/auth/logout``, ``/auth/me``) is the same as in
``fastapi_app.py``. docs/quickstart.md ("Your own login route") walks through it.
"""

import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from authstate import AuthState, AuthStateError, Principal
from authstate.asgi.client import client_info
from authstate.asgi.middleware import get_auth_value, own_origin
from authstate.asgi.responses import error_response, set_credentials

auth = AuthState(mode="hybrid")  # store: $AUTHSTATE_STORE, default sqlite:///authstate.db
app = FastAPI(middleware=[auth.middleware()])
app.mount("/auth", auth.routes())  # logout, refresh, me, sessions: they work for any login


@app.exception_handler(AuthStateError)
async def authstate_error(request: Request, exc: AuthStateError) -> Response:
    """authstate's errors (here: a cross-site login refused) as its JSON bodies."""
    return error_response(exc)


@dataclass(frozen=True)
class User:
    id: str
    roles: tuple[str, ...]
    password_sha256: str  # stands in for your real password hashing (argon2, bcrypt...)


USERS = {
    "carol": User("u-carol", ("staff",), hashlib.sha256(b"carol's long password").hexdigest()),
}


def check_password(username: str, password: str) -> User | None:
    """Your application's own check; authstate never sees this table."""
    user = USERS.get(username)
    digest = hashlib.sha256(password.encode()).hexdigest()
    if user is None or not hmac.compare_digest(digest, user.password_sha256):
        return None
    return user


class Credentials(BaseModel):
    username: str
    password: str


@app.post("/login")
async def login(body: Credentials, request: Request) -> Response:
    # Login CSRF: refuse a cross-site post that would sign this browser in as someone else.
    auth.csrf.check_login(
        origin=request.headers.get("origin"),
        sec_fetch_site=request.headers.get("sec-fetch-site"),
        own_origin=own_origin(request.scope, trust_forwarded=auth.settings.trust_forwarded),
    )
    user = check_password(body.username, body.password)
    if user is None:
        raise HTTPException(401, "invalid username or password")
    issued = await auth.login(
        user.id,
        user.roles,
        client=client_info(request, trust_forwarded=auth.settings.trust_forwarded),
        # The credential this browser had before, if any: it is retired (fixation defence).
        previous_auth=get_auth_value(request),
    )
    csrf_token = auth.csrf_token(issued.principal.binding)
    response = JSONResponse({"user_id": user.id, "csrf_token": csrf_token})
    set_credentials(response, issued, auth.cookie_policy, csrf_token=csrf_token)
    return response


Staff = Annotated[Principal, Depends(auth.require(role="staff"))]


@app.get("/orders")
async def orders(user: Staff) -> dict[str, object]:
    return {"user_id": user.user_id, "orders": ["#1001", "#1002"]}
