"""A FastAPI app whose ``/orders`` route only staff may call: docs/quickstart.md runs it."""

from typing import Annotated

from fastapi import Depends, FastAPI

from authstate import AuthState, Principal

auth = AuthState(mode="session")  # store: $AUTHSTATE_STORE, default sqlite:///authstate.db
app = FastAPI(middleware=[auth.middleware()])
app.mount("/auth", auth.routes())  # POST /auth/login, POST /auth/logout, GET /auth/me, ...

Staff = Annotated[Principal, Depends(auth.require(role="staff"))]


@app.get("/orders")
async def orders(user: Staff) -> dict[str, object]:
    return {"user_id": user.user_id, "orders": ["#1001", "#1002"]}
