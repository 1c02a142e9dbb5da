"""Roles that change while users are signed in: an admin demotes a user, on every node.

Hybrid mode: the demoted user's access token is refused with ``401 token_stale`` at once;
their client refreshes (``POST /auth/refresh``) and the new token carries the new roles.
"""

from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException
from pydantic import BaseModel

from authstate import AuthState, AuthStateError, Principal

auth = AuthState(mode="hybrid")  # store: $AUTHSTATE_STORE, default sqlite:///authstate.db
app = FastAPI(middleware=[auth.middleware()])
app.mount("/auth", auth.routes())

Admin = Annotated[Principal, Depends(auth.require(role="admin"))]


class Roles(BaseModel):
    roles: list[str]


@app.get("/admin/report")
async def report(admin: Admin) -> dict[str, object]:
    return {"for": admin.user_id, "signups": 42}


@app.put("/admin/users/{username}/roles")  # unsafe: the middleware checks X-CSRF-Token
async def set_roles(username: str, body: Roles, admin: Admin) -> dict[str, object]:
    try:
        user = await auth.accounts.get_by_name(username)
        grants = await auth.set_roles(user.id, body.roles)  # live on every node
    except AuthStateError as exc:  # NotFound (404), BadRequest for a bad role (400)
        raise HTTPException(exc.status_code, exc.code) from exc
    return {"username": user.username, "roles": list(grants.roles or ())}
