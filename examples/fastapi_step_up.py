"""Step-up ("sudo mode"): a FastAPI route that needs a recent password check.

``/orders`` needs a login; refunding an order also needs the password to have been
checked in the last five minutes. A stale login gets ``401`` with error
``reauth_required``; the client asks for the password, posts it to ``/auth/reauth``
(``{"password": ...}`` with the ``X-CSRF-Token`` header) and retries.
"""

from typing import Annotated

from fastapi import Depends, FastAPI

from authstate import AuthState, Principal

auth = AuthState(mode="hybrid")  # store: $AUTHSTATE_STORE, default sqlite:///authstate.db
app = FastAPI(middleware=[auth.middleware()])
app.mount("/auth", auth.routes())  # ... and POST /auth/reauth, POST /auth/sessions/revoke-others

Staff = Annotated[Principal, Depends(auth.require(role="staff"))]
# Staff whose password was checked in the last 300 seconds (a login counts, so does a reauth).
RecentlyConfirmedStaff = Annotated[Principal, Depends(auth.require(role="staff", fresh=300))]


@app.get("/orders")
async def orders(user: Staff) -> dict[str, object]:
    return {"user_id": user.user_id, "password_checked_at": user.auth_time}


@app.post("/orders/{order_id}/refund")
async def refund(order_id: str, user: RecentlyConfirmedStaff) -> dict[str, str]:
    return {"refunded": order_id, "by": user.user_id}
