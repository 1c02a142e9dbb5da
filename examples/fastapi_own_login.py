"""A FastAPI app that keeps its own users and only hands the "who is this?" part to authstate.

Its ``POST /login`` checks the password against the application's own table, then makes
one call, ``auth.login_response(...)``, that issues the credentials and sets every cookie;
``POST /logout`` is one call too. Everything else (the middleware, ``auth.require``,
``/auth/refresh``, ``/auth/me``) is the same as in ``fastapi_app.py``. A subscriber to
authstate's lifecycle events keeps each user's last login time. docs/quickstart.md ("Your
own login route") walks through it.
"""

import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request, Response
from pydantic import BaseModel

from authstate import AuthState, InvalidCredentials, Principal
from authstate.events import LoginSucceeded

auth = AuthState(mode="hybrid")  # store: $AUTHSTATE_STORE, default sqlite:///authstate.db
app = FastAPI(middleware=[auth.middleware()])
app.mount("/auth", auth.routes())  # refresh, me, sessions: they work for any login


@dataclass(frozen=True)
class User:
    id: str
    roles: tuple[str, ...]
    password_sha256: str  # stands in for your real password hashing (argon2, bcrypt...)


USERS = {
    "carol": User("u-carol", ("staff",), hashlib.sha256(b"carol's long password").hexdigest()),
}
LAST_LOGIN: dict[str, float] = {}  # user id -> Unix time, kept by the subscriber below


@auth.on(LoginSucceeded)
def remember_last_login(event: LoginSucceeded) -> None:
    """Called after every login, ours or /auth/login's, once the session is stored."""
    LAST_LOGIN[event.user_id] = event.at


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
    user = check_password(body.username, body.password)
    if user is None:
        # authstate's errors answer {"error": "invalid_credentials", "detail": ...}, 401,
        # like its own routes (the middleware writes the answer).
        raise InvalidCredentials()
    # One call: refuses a cross-site login (403 csrf_failed), retires the browser's old
    # credential, issues new ones and sets the auth, refresh and CSRF cookies. The body is
    # the one of POST /auth/login: user, mode, csrf_token, expires_at.
    return await auth.login_response(request, user.id, user.roles, username=body.username)


@app.post("/logout")
async def logout(request: Request) -> Response:
    # Revokes this browser's session on every node and clears the cookies (204).
    return await auth.logout_response(request)


Staff = Annotated[Principal, Depends(auth.require(role="staff"))]


@app.get("/orders")
async def orders(user: Staff) -> dict[str, object]:
    return {"user_id": user.user_id, "orders": ["#1001", "#1002"]}
