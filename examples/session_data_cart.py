"""A shopping cart kept in the session, on the server: FastAPI in session mode.

The cart lives in the session's server-side data (``auth.session_data``), not in a cookie,
a token or a table of ours: it is there on every node that shares the store, and it ends
with the session (logout, expiry, "log out everywhere").

    authstate users add alice --password-stdin
    uvicorn --app-dir examples session_data_cart:app
    # POST /auth/login, then GET /cart, POST /cart/items {"sku": "tea", "quantity": 2}
    # (with the X-CSRF-Token header), DELETE /cart
"""

from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel, Field

from authstate import AuthState, Principal, SessionDataTooLarge

auth = AuthState(mode="session")  # store: $AUTHSTATE_STORE, default sqlite:///authstate.db
app = FastAPI(middleware=[auth.middleware()])
app.mount("/auth", auth.routes())  # also GET/PATCH /auth/session/data

CatalogueItem = Annotated[str, Field(pattern=r"^[a-z0-9-]{1,32}$")]


class Item(BaseModel):
    sku: CatalogueItem
    quantity: int = Field(default=1, ge=1, le=99)


@app.get("/cart")
async def show_cart(
    request: Request, principal: Annotated[Principal, Depends(auth.require())]
) -> dict[str, int]:
    data = await auth.session_data(request)
    cart: dict[str, int] = data.get("cart", {})
    return cart


@app.post("/cart/items")
async def add_item(
    item: Item, request: Request, principal: Annotated[Principal, Depends(auth.require())]
) -> dict[str, int]:
    # An unsafe method: the middleware has already checked the X-CSRF-Token header.
    data = await auth.session_data(request)
    cart: dict[str, int] = dict(data.get("cart", {}))
    cart[item.sku] = cart.get(item.sku, 0) + item.quantity
    # Assign again: save() sends the keys that were set. Last writer wins per key, so two
    # adds at the same instant from two tabs keep one; fine for a cart, not for money.
    data["cart"] = cart
    try:
        await data.save()
    except SessionDataTooLarge as exc:
        raise HTTPException(413, "the cart is full") from exc
    return cart


@app.delete("/cart", status_code=204)
async def empty_cart(
    request: Request, principal: Annotated[Principal, Depends(auth.require())]
) -> None:
    await auth.update_session_data(request, {}, remove=["cart"])
