"""The applications the bench compares: one app, many ways to know the user.

Every configuration serves the same ``GET /me`` (``{"id": ..., "roles": [...]}`` for the
user the request authenticates as, 401 otherwise) from the same base application, a
FastAPI app when FastAPI is installed (the framework the peers need), else Starlette.
Only the authentication layer differs: none (the baseline), authstate in a mode on a
store, or a peer (``authstate.bench.peers``).

A configuration is described by a JSON-able ``spec`` so that a uvicorn subprocess can
build exactly what the in-process run built: ``uvicorn --factory
authstate.bench.apps:app_from_env`` reads it from ``AUTHSTATE_BENCH_SPEC``. Each built
configuration also hands back the ``Cookie`` header of a logged-in client; the server
variant answers it at ``GET /bench/cookie`` (loopback only, bench apps only).
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authstate.asgi.auth_state import AuthState
from authstate.asgi.middleware import PRINCIPAL_KEY, AuthMiddleware
from authstate.principal import Principal
from authstate.settings import Settings

SPEC_ENV = "AUTHSTATE_BENCH_SPEC"
USER_KEY = "bench.user"  # (user id, roles) set by the peers' hand-written layers
BENCH_USER = ("u1", ("staff",))
BENCH_ACCESS_TTL = "1h"  # the peers' token lifetime too
# One secret for every node of a run: nodes sharing a store share its keys through it.
DEFAULT_SECRET = "authstate-bench-secret-not-for-production-use!"  # noqa: S105 - bench only

Login = Callable[[Request], Awaitable[Response]]


@dataclass
class Built:
    """A ready configuration: the ASGI app, the Cookie header a logged-in client sends,
    and how to release what it holds (stores, connections)."""

    app: ASGIApp
    cookie: str
    close: Callable[[], Awaitable[None]]
    # The request header ``cookie`` goes in: "authorization" for a Bearer client.
    header: str = "cookie"


async def _nothing() -> None:
    return None


def framework() -> str:
    try:
        import fastapi  # noqa: F401
    except ImportError:
        return "starlette"
    return "fastapi"


def user_of(scope: Scope) -> tuple[str, tuple[str, ...]] | None:
    """Who the request is, whichever layer said so."""
    principal = scope.get(PRINCIPAL_KEY)
    if isinstance(principal, Principal):
        return principal.user_id, principal.roles
    user = scope.get(USER_KEY)
    if user is not None:
        return user  # type: ignore[no-any-return]
    session = scope.get("session")
    if session and "uid" in session:
        return session["uid"], tuple(session.get("roles", ()))
    return None


def base_app(*, anonymous_user: bool = False, login: Login | None = None) -> Any:
    """The application under test: ``GET /me``; ``anonymous_user`` answers for the bench
    user without any authentication (the baseline); ``login`` adds ``POST /bench/login``
    for peers whose cookie only a request can create."""

    def answer(scope: Scope) -> Any:
        user = BENCH_USER if anonymous_user else user_of(scope)
        if user is None:
            return None
        return {"id": user[0], "roles": list(user[1])}

    if framework() == "fastapi":
        from fastapi import FastAPI

        app: Any = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

        @app.get("/me")  # type: ignore[untyped-decorator]  # FastAPI is optional, untyped here
        async def me(request: Request) -> Any:
            body = answer(request.scope)
            if body is None:
                return JSONResponse({"error": "unauthenticated"}, 401)
            return body

    else:
        from starlette.applications import Starlette
        from starlette.routing import Route

        async def me_endpoint(request: Request) -> Response:
            body = answer(request.scope)
            if body is None:
                return JSONResponse({"error": "unauthenticated"}, 401)
            return JSONResponse(body)

        app = Starlette(routes=[Route("/me", me_endpoint)])
    if login is not None:
        app.add_route("/bench/login", login, methods=["POST"])
    return app


# -- the baseline and authstate ---------------------------------------------------------------
async def build_none(spec: dict[str, Any]) -> Built:
    return Built(base_app(anonymous_user=True), "", _nothing)


def authstate_settings(spec: dict[str, Any]) -> Settings:
    # Access tokens live an hour, as the peers' do: the default 15 minutes would expire
    # the logged-in client's cookie in the middle of a full end-to-end section. What a
    # verification costs does not depend on the lifetime.
    return Settings.from_env(
        {},
        mode=spec["mode"],
        store=spec["store"],
        algorithm=spec.get("algorithm", "EdDSA"),
        secret=spec.get("secret", DEFAULT_SECRET),
        access_ttl=spec.get("access_ttl", BENCH_ACCESS_TTL),
        token_format=spec.get("token_format", "jws"),
        transports="cookie,bearer" if spec.get("transport") == "bearer" else "cookie",
    )


async def start_authstate(spec: dict[str, Any]) -> AuthState:
    if spec["store"].startswith("postgres"):
        from authstate.bench._env import ensure_postgres_schema

        await ensure_postgres_schema(spec["store"])
    auth = AuthState(authstate_settings(spec))
    await auth.start()
    return auth


async def build_authstate(spec: dict[str, Any]) -> Built:
    auth = await start_authstate(spec)
    issued = await auth.login(BENCH_USER[0], BENCH_USER[1])
    app = AuthMiddleware(base_app(), auth=auth)
    if spec.get("transport") == "bearer":
        # The same credential as the cookie, sent as a header client sends it.
        return Built(app, f"Bearer {issued.auth_value}", auth.stop, header="authorization")
    cookie = f"{auth.cookie_policy.auth_cookie_name}={issued.auth_value}"
    return Built(app, cookie, auth.stop)


def builders() -> dict[str, Callable[[dict[str, Any]], Awaitable[Built]]]:
    from authstate.bench import peers

    return {"none": build_none, "authstate": build_authstate, **peers.BUILDERS}


async def build(spec: dict[str, Any]) -> Built:
    """Build the configuration ``spec`` describes (``spec["kind"]`` names it)."""
    return await builders()[spec["kind"]](spec)


# -- the server variant -----------------------------------------------------------------------
class BenchServer:
    """The ASGI app uvicorn runs: builds the configuration at startup, answers
    ``GET /bench/cookie`` with the logged-in Cookie header, passes the rest on."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.built: Built | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        built = self.built
        if built is None:
            await PlainTextResponse("not started", 503)(scope, receive, send)
            return
        if scope["type"] == "http" and scope["path"] == "/bench/cookie":
            await PlainTextResponse(built.cookie)(scope, receive, send)
            return
        await built.app(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message: Message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.built = await build(self.spec)
                except Exception as exc:  # reported to uvicorn, which exits
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.built is not None:
                    await self.built.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def app_from_env() -> BenchServer:
    """``uvicorn --factory authstate.bench.apps:app_from_env`` with ``AUTHSTATE_BENCH_SPEC``."""
    return BenchServer(json.loads(os.environ[SPEC_ENV]))
