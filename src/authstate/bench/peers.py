"""The peers: what users would otherwise put in front of the same application.

Each builder returns a ``Built`` (``authstate.bench.apps``) around the same base app. The
libraries come with the ``bench`` extra and are imported only here, only when asked for;
``unavailable(kind)`` says why a peer cannot run (a missing package, no Redis).

- ``starlette-session``: Starlette's ``SessionMiddleware`` (a signed cookie).
- ``stdlib-jwt``: a careful hand-written HS256 check with ``hmac`` and ``json`` (anchor).
- ``pyjwt``: a middleware decoding the cookie with PyJWT (HS256, ``iss``/``aud``/``exp``).
- ``redis-get``: one ``redis.asyncio`` GET of the session by ID plus ``json.loads`` (anchor).
- ``starsessions-redis``: starsessions with its RedisStore, sessions autoloaded.
- ``fastapi-users-jwt`` / ``fastapi-users-redis``: fastapi-users with ``CookieTransport``
  and ``JWTStrategy`` / ``RedisStrategy``, users in SQLite (SQLAlchemy + aiosqlite), as
  its documentation sets it up.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from http.cookies import SimpleCookie
from typing import Any

from starlette.requests import Request, cookie_parser
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from authstate.bench.apps import BENCH_USER, USER_KEY, Built, base_app

SECRET = "authstate-bench-peer-secret-0123456789abcdef"  # noqa: S105 - bench only
ISSUER = "bench"
AUDIENCE = "bench"
PEERS = (
    "starlette-session",
    "stdlib-jwt",
    "pyjwt",
    "redis-get",
    "starsessions-redis",
    "fastapi-users-jwt",
    "fastapi-users-redis",
)
_NEEDS = {
    "starlette-session": ("itsdangerous",),
    "stdlib-jwt": (),
    "pyjwt": ("jwt",),
    "redis-get": ("redis",),
    "starsessions-redis": ("starsessions", "redis"),
    "fastapi-users-jwt": ("fastapi", "fastapi_users", "fastapi_users_db_sqlalchemy", "aiosqlite"),
    "fastapi-users-redis": (
        "fastapi",
        "fastapi_users",
        "fastapi_users_db_sqlalchemy",
        "aiosqlite",
        "redis",
    ),
}
_USES_REDIS = frozenset({"redis-get", "starsessions-redis", "fastapi-users-redis"})


def unavailable(kind: str, *, redis_url: str | None) -> str | None:
    """Why peer ``kind`` cannot run here, or None."""
    from authstate.bench._env import installed

    missing = [module for module in _NEEDS[kind] if not installed(module)]
    if missing:
        return f"not installed: {', '.join(missing)} (pip install 'authstate[bench]')"
    if kind in _USES_REDIS and redis_url is None:
        return "needs Redis"
    return None


def _claims() -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": BENCH_USER[0],
        "roles": list(BENCH_USER[1]),
        "iat": now,
        "exp": now + 3600,
        "jti": secrets.token_urlsafe(16),
    }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _cookie(scope: Scope, name: str) -> str | None:
    for key, value in scope["headers"]:
        if key == b"cookie":
            return cookie_parser(value.decode("latin-1")).get(name)
    return None


class _TokenLayer:
    """A hand-written layer: read cookie ``name``, ``check`` it into a user or refuse."""

    def __init__(
        self,
        app: ASGIApp,
        name: str,
        check: Callable[[str], Awaitable[tuple[str, tuple[str, ...]] | None]],
    ) -> None:
        self.app, self.name, self.check = app, name, check

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            token = _cookie(scope, self.name)
            user = None if token is None else await self.check(token)
            if user is None:
                await JSONResponse({"error": "unauthenticated"}, 401)(scope, receive, send)
                return
            scope[USER_KEY] = user
        await self.app(scope, receive, send)


async def _login_cookie(app: ASGIApp) -> str:
    """Run ``POST /bench/login`` in process; return the ``name=value`` of what it set."""
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/bench/login",
        "raw_path": b"/bench/login",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    cookies: list[str] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            for key, value in message.get("headers", []):
                if key.lower() == b"set-cookie":
                    parsed: SimpleCookie = SimpleCookie()
                    parsed.load(value.decode("latin-1"))
                    cookies.extend(f"{m.key}={m.value}" for m in parsed.values())

    await app(scope, receive, send)  # type: ignore[arg-type]
    if not cookies:
        raise RuntimeError("the peer's login set no cookie")
    return "; ".join(cookies)


async def _set_session(request: Request) -> Response:
    request.session.update({"uid": BENCH_USER[0], "roles": list(BENCH_USER[1])})
    return JSONResponse({"ok": True})


async def _nothing() -> None:
    return None


# -- signed cookie and JWT peers ---------------------------------------------------------------
async def build_starlette_session(spec: dict[str, Any]) -> Built:
    from starlette.middleware.sessions import SessionMiddleware

    app = SessionMiddleware(base_app(login=_set_session), secret_key=SECRET, https_only=False)
    return Built(app, await _login_cookie(app), _nothing)


async def build_stdlib_jwt(spec: dict[str, Any]) -> Built:
    key = SECRET.encode()
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(_claims()).encode())
    signing_input = f"{header}.{body}"
    mac = hmac.digest(key, signing_input.encode(), "sha256")
    token = f"{signing_input}.{_b64(mac)}"

    async def check(token: str) -> tuple[str, tuple[str, ...]] | None:
        try:
            signing_input, _, signature = token.rpartition(".")
            expected = hmac.digest(key, signing_input.encode("ascii"), hashlib.sha256)
            if not hmac.compare_digest(expected, _unb64(signature)):
                return None
            claims = json.loads(_unb64(signing_input.partition(".")[2]))
        except (ValueError, UnicodeError):
            return None
        if claims["exp"] <= time.time() or claims["iss"] != ISSUER or claims["aud"] != AUDIENCE:
            return None
        return claims["sub"], tuple(claims["roles"])

    return Built(_TokenLayer(base_app(), "token", check), f"token={token}", _nothing)


async def build_pyjwt(spec: dict[str, Any]) -> Built:
    import jwt

    token = jwt.encode(_claims(), SECRET, algorithm="HS256")

    async def check(token: str) -> tuple[str, tuple[str, ...]] | None:
        try:
            claims = jwt.decode(
                token, SECRET, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER
            )
        except jwt.PyJWTError:
            return None
        return claims["sub"], tuple(claims["roles"])

    return Built(_TokenLayer(base_app(), "token", check), f"token={token}", _nothing)


# -- Redis peers -------------------------------------------------------------------------------
def _redis(spec: dict[str, Any], *, decode_responses: bool = False) -> Any:
    import redis.asyncio

    return redis.asyncio.Redis.from_url(spec["redis_url"], decode_responses=decode_responses)


async def build_redis_get(spec: dict[str, Any]) -> Built:
    client = _redis(spec)
    prefix = spec.get("prefix", "authstate-bench:") + "redis-get:"
    session_id = secrets.token_urlsafe(32)
    value = json.dumps({"uid": BENCH_USER[0], "roles": list(BENCH_USER[1]), "data": {}})
    await client.set(prefix + session_id, value, ex=3600)

    async def check(session_id: str) -> tuple[str, tuple[str, ...]] | None:
        raw = await client.get(prefix + session_id)
        if raw is None:
            return None
        session = json.loads(raw)
        return session["uid"], tuple(session["roles"])

    async def close() -> None:
        await client.aclose()

    return Built(_TokenLayer(base_app(), "sid", check), f"sid={session_id}", close)


async def build_starsessions_redis(spec: dict[str, Any]) -> Built:
    from starsessions import SessionAutoloadMiddleware, SessionMiddleware
    from starsessions.stores.redis import RedisStore

    client = _redis(spec)
    store = RedisStore(connection=client, prefix=spec.get("prefix", "authstate-bench:") + "star:")
    app = SessionMiddleware(
        SessionAutoloadMiddleware(base_app(login=_set_session)),
        store=store,
        lifetime=3600,
        cookie_https_only=False,
    )

    async def close() -> None:
        await client.aclose()

    return Built(app, await _login_cookie(app), close)


# -- fastapi-users -----------------------------------------------------------------------------
_FASTAPI_USERS_MODEL: Any = None


def _fastapi_users_model() -> tuple[Any, Any]:
    global _FASTAPI_USERS_MODEL
    if _FASTAPI_USERS_MODEL is None:
        from fastapi_users_db_sqlalchemy import SQLAlchemyBaseUserTableUUID
        from sqlalchemy.orm import DeclarativeBase

        class Base(DeclarativeBase):
            pass

        class User(SQLAlchemyBaseUserTableUUID, Base):
            __tablename__ = "user"

        _FASTAPI_USERS_MODEL = (Base, User)
    return _FASTAPI_USERS_MODEL  # type: ignore[no-any-return]


async def _build_fastapi_users(spec: dict[str, Any], strategy_kind: str) -> Built:
    import uuid
    from collections.abc import AsyncIterator

    from fastapi import Depends, FastAPI
    from fastapi_users import BaseUserManager, FastAPIUsers, UUIDIDMixin
    from fastapi_users.authentication import (
        AuthenticationBackend,
        CookieTransport,
        JWTStrategy,
        RedisStrategy,
    )
    from fastapi_users_db_sqlalchemy import SQLAlchemyUserDatabase
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

    base, user_model = _fastapi_users_model()
    directory = spec.get("tmpdir") or tempfile.mkdtemp(prefix="authstate-bench-fu-")
    path = os.path.join(directory, f"users-{strategy_kind}-{secrets.token_hex(4)}.db")
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as conn:
        await conn.run_sync(base.metadata.create_all)
    session_maker = async_sessionmaker(engine, expire_on_commit=False)
    async with session_maker() as session:
        user = user_model(
            email="u1@example.com",
            hashed_password="unused",  # noqa: S106 - no password login in the bench
            is_active=True,
            is_superuser=False,
            is_verified=True,
        )
        session.add(user)
        await session.commit()

    async def get_async_session() -> AsyncIterator[AsyncSession]:
        async with session_maker() as session:
            yield session

    async def get_user_db(session: AsyncSession = Depends(get_async_session)) -> AsyncIterator[Any]:  # noqa: B008
        yield SQLAlchemyUserDatabase(session, user_model)

    class UserManager(UUIDIDMixin, BaseUserManager[user_model, uuid.UUID]):  # type: ignore[valid-type]
        reset_password_token_secret = SECRET
        verification_token_secret = SECRET

    async def get_user_manager(user_db: Any = Depends(get_user_db)) -> AsyncIterator[Any]:  # noqa: B008
        yield UserManager(user_db)

    client = None
    if strategy_kind == "jwt":
        jwt_strategy: Any = JWTStrategy(secret=SECRET, lifetime_seconds=3600)

        def get_strategy() -> Any:  # the documented, synchronous form
            return jwt_strategy

    else:
        client = _redis(spec, decode_responses=True)  # as fastapi-users documents it
        prefix = spec.get("prefix", "authstate-bench:") + "fu:"
        redis_strategy: Any = RedisStrategy(client, lifetime_seconds=3600, key_prefix=prefix)

        def get_strategy() -> Any:
            return redis_strategy

    backend = AuthenticationBackend(
        name="cookie", transport=CookieTransport(cookie_secure=False), get_strategy=get_strategy
    )
    users = FastAPIUsers[user_model, uuid.UUID](get_user_manager, [backend])  # type: ignore[valid-type]
    current_user = users.current_user(active=True)
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/me")
    async def me(user: Any = Depends(current_user)) -> Any:  # noqa: B008
        return {"id": str(user.id), "roles": list(BENCH_USER[1])}

    token = await get_strategy().write_token(user)

    async def close() -> None:
        await engine.dispose()
        if client is not None:
            await client.aclose()

    return Built(app, f"fastapiusersauth={token}", close)


async def build_fastapi_users_jwt(spec: dict[str, Any]) -> Built:
    return await _build_fastapi_users(spec, "jwt")


async def build_fastapi_users_redis(spec: dict[str, Any]) -> Built:
    return await _build_fastapi_users(spec, "redis")


BUILDERS: dict[str, Callable[[dict[str, Any]], Awaitable[Built]]] = {
    "starlette-session": build_starlette_session,
    "stdlib-jwt": build_stdlib_jwt,
    "pyjwt": build_pyjwt,
    "redis-get": build_redis_get,
    "starsessions-redis": build_starsessions_redis,
    "fastapi-users-jwt": build_fastapi_users_jwt,
    "fastapi-users-redis": build_fastapi_users_redis,
}
