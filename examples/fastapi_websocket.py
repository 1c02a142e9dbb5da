"""A FastAPI WebSocket route for signed-in users: a live order feed behind the auth cookie.

The browser's cookie authenticates the handshake, a page on another origin cannot open
it (403), and the server closes the socket with 4401 when the session is revoked on any
node (logout, logout everywhere, password change) or expires.
"""

from typing import Annotated

from fastapi import Depends, FastAPI, WebSocket, WebSocketDisconnect

from authstate import AuthState, Principal

auth = AuthState(mode="session")  # store: $AUTHSTATE_STORE, default sqlite:///authstate.db
app = FastAPI(middleware=[auth.middleware()])
app.mount("/auth", auth.routes())  # also GET /auth/ws, the live session list

User = Annotated[Principal, Depends(auth.require())]


@app.websocket("/orders/live")
async def live_orders(websocket: WebSocket, user: User) -> None:
    # Anonymous callers never get here: require() refused the handshake (HTTP 401).
    await websocket.accept()
    await websocket.send_json({"user_id": user.user_id, "orders": ["#1001"]})
    try:
        while True:
            ask = await websocket.receive_text()
            await websocket.send_json({"echo": ask})
    except WebSocketDisconnect as closed:
        # The client left, or authstate closed the socket: 4401 = credential revoked.
        print(f"socket of {user.user_id} closed with {closed.code}")
