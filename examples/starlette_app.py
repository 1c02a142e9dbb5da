"""A plain Starlette app in hybrid mode: a page, a JSON API and authstate's routes.

The page (``static/index.html``) signs in and calls the API with ``static/authstate-fetch.js``,
which sends the CSRF header and refreshes the 15-minute access token when it expires.

    authstate users add alice --password-stdin
    uvicorn --app-dir examples starlette_app:app
    # then open http://localhost:8000/
"""

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from authstate import AuthState, Principal
from authstate.asgi.middleware import get_principal

STATIC = Path(__file__).parent / "static"

auth = AuthState(mode="hybrid")  # store: $AUTHSTATE_STORE, default sqlite:///authstate.db
notes: dict[str, list[str]] = {}  # user id -> notes; a real app has a database


def unauthenticated() -> Response:
    return JSONResponse(
        {"error": "unauthenticated", "detail": "authentication required"},
        401,
        headers={"Cache-Control": "no-store"},
    )


async def homepage(request: Request) -> Response:
    return FileResponse(STATIC / "index.html")


async def list_notes(request: Request) -> Response:
    principal: Principal | None = get_principal(request)
    if principal is None:
        return unauthenticated()
    return JSONResponse({"notes": notes.get(principal.user_id, [])})


async def add_note(request: Request) -> Response:
    # An unsafe method: the middleware has already checked the X-CSRF-Token header.
    principal = get_principal(request)
    if principal is None:
        return unauthenticated()
    body = await request.json()
    text = str(body.get("text", ""))[:200]
    notes.setdefault(principal.user_id, []).append(text)
    return JSONResponse({"notes": notes[principal.user_id]}, 201)


app = Starlette(
    routes=[
        Route("/", homepage),
        Route("/api/notes", list_notes, methods=["GET"]),
        Route("/api/notes", add_note, methods=["POST"]),
        Mount("/auth", auth.routes()),
        Mount("/static", StaticFiles(directory=STATIC)),
    ],
    middleware=[auth.middleware()],
)
