"""docs/http.md's endpoint table is the app's route table: a route added, removed or given
another method without the page following fails here."""

from __future__ import annotations

import re

from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from authstate import AuthState
from authstate.server.app import create_app
from authstate.settings import Settings
from tests.docs.markdown import DOCS

HTTP = DOCS / "http.md"
_ROW = re.compile(r"^\| `([A-Z]+) (/[^` ]*)`")


def _normalized(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def documented() -> set[str]:
    section = HTTP.read_text().split("## Endpoints", 1)[1].split("\n## ", 1)[0]
    rows = [_ROW.match(line) for line in section.splitlines()]
    return {f"{m[1]} {_normalized(m[2])}" for m in rows if m}


def served(routes: list[BaseRoute], prefix: str = "") -> set[str]:
    found: set[str] = set()
    for route in routes:
        if isinstance(route, Mount):
            found |= served(route.routes, prefix + route.path)
        elif isinstance(route, Route):
            # Starlette answers HEAD wherever it answers GET; the page lists GET.
            for method in (route.methods or set()) - {"HEAD"}:
                found.add(f"{method} {_normalized(prefix + route.path)}")
        elif isinstance(route, WebSocketRoute):
            # A WebSocket opens with a GET (the Upgrade handshake); the row says WebSocket.
            found.add(f"GET {_normalized(prefix + route.path)}")
    return found


def test_the_endpoint_table_lists_exactly_the_routes_of_the_app() -> None:
    # Metrics on: the opt-in GET /metrics is a row of the table too.
    settings = Settings.from_env({}, mode="hybrid", store="memory://", metrics="1")
    app = create_app(auth=AuthState(settings))
    routes = served(app.routes)
    assert len(routes) >= 13  # the walk found the mounted /auth routes too
    assert documented() == routes


def test_the_table_reader_sees_every_row() -> None:
    rows = documented()
    assert "DELETE /auth/sessions/{}" in rows and "GET /.well-known/jwks.json" in rows
    assert "GET /auth/ws" in rows
